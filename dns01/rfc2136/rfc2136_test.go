package rfc2136_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/rfc2136"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

func startBIND(t *testing.T, alg string) *testenv.BIND {
	t.Helper()
	return testenv.StartBIND(t, testenv.BINDOptions{TSIGAlgorithm: alg, Zones: []testenv.BINDZone{
		{Name: "example.test", Updatable: true},
		{Name: "acme.test", Updatable: true},
		{Name: "readonly.test"},
	}})
}

func newProvider(t *testing.T, b *testenv.BIND, opts rfc2136.Options) *rfc2136.Provider {
	t.Helper()
	if opts.Server == "" {
		opts.Server = b.Addr
	}
	if opts.TSIGKey == "" {
		opts.TSIGKey = b.KeyName
	}
	if opts.TSIGAlgorithm == "" {
		opts.TSIGAlgorithm = b.KeyAlgorithm
	}
	if opts.TSIGSecret == "" {
		opts.TSIGSecret = b.KeySecret
	}
	p, err := rfc2136.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantTXT(t *testing.T, b *testenv.BIND, name string, want ...string) {
	t.Helper()
	got, err := b.TXT(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("TXT %s = %q, want %q", name, got, want)
	}
}

func rec(name, zone, value string) dns01.Record {
	return dns01.Record{FQDN: name + ".", Zone: zone + ".", Value: value}
}

func TestPresentCleanUp(t *testing.T) {
	for _, alg := range []string{"hmac-sha256", "hmac-sha512"} {
		t.Run(alg, func(t *testing.T) {
			b := startBIND(t, alg)
			p := newProvider(t, b, rfc2136.Options{})
			wild := rec("_acme-challenge.example.test", "example.test", "wildcard-value")
			base := rec("_acme-challenge.example.test", "example.test", "base-value")
			other := rec("_acme-challenge.www.example.test", "example.test", "www-value")
			delegated := rec("www.acme.test", "acme.test", "delegated-value")
			all := []dns01.Record{wild, base, other, delegated}
			if err := p.Present(t.Context(), all); err != nil {
				t.Fatal(err)
			}
			if got := p.Updates(); got != 2 {
				t.Errorf("updates for 2 zones = %d, want 2", got)
			}
			if err := p.Present(t.Context(), []dns01.Record{base}); err != nil {
				t.Fatalf("presenting an existing record: %v", err)
			}
			wantTXT(t, b, "_acme-challenge.example.test", "wildcard-value", "base-value")
			wantTXT(t, b, "www.acme.test", "delegated-value")

			if err := p.CleanUp(t.Context(), []dns01.Record{wild, other}); err != nil {
				t.Fatal(err)
			}
			wantTXT(t, b, "_acme-challenge.example.test", "base-value") // only the value given goes
			wantTXT(t, b, "_acme-challenge.www.example.test")
			if err := p.CleanUp(t.Context(), all); err != nil {
				t.Fatalf("cleaning up absent records: %v", err)
			}
			wantTXT(t, b, "_acme-challenge.example.test")
			wantTXT(t, b, "www.acme.test")
		})
	}
}

func TestBigBatch(t *testing.T) {
	b := startBIND(t, "")
	p := newProvider(t, b, rfc2136.Options{})
	var recs []dns01.Record
	for i := range 400 {
		recs = append(recs, rec(fmt.Sprintf("_acme-challenge.n%d.example.test", i), "example.test", "v"+fmt.Sprint(i)))
	}
	if err := p.Present(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if got := p.Updates(); got != 3 {
		t.Errorf("updates for 400 records = %d, want 3 of at most 150", got)
	}
	wantTXT(t, b, "_acme-challenge.n399.example.test", "v399")
	if err := p.CleanUp(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	wantTXT(t, b, "_acme-challenge.n0.example.test")
}

func TestErrors(t *testing.T) {
	b := startBIND(t, "")
	wrongSecret := base64.StdEncoding.EncodeToString([]byte("not the secret, not the secret!!"))
	r := rec("_acme-challenge.example.test", "example.test", "v")
	tests := []struct {
		name   string
		opts   rfc2136.Options
		rec    dns01.Record
		want   string // the whole message, with ADDR for the server
		config bool   // wraps dns01.ErrConfig
	}{
		{"wrong secret", rfc2136.Options{TSIGSecret: wrongSecret}, r,
			"rfc2136: update example.test at ADDR: NOTAUTH (TSIG: BADSIG): signature refused: the secret or algorithm (hmac-sha256) of TSIG key tlspilot. differs from the server's", true},
		{"unknown key", rfc2136.Options{TSIGKey: "stranger."}, r,
			"rfc2136: update example.test at ADDR: NOTAUTH (TSIG: BADKEY): the server does not know TSIG key stranger. with hmac-sha256: check tsig_key, tsig_algorithm and the server's key clause", true},
		{"wrong algorithm", rfc2136.Options{TSIGAlgorithm: "hmac-sha512"}, r,
			"rfc2136: update example.test at ADDR: NOTAUTH (TSIG: BADKEY): the server does not know TSIG key tlspilot. with hmac-sha512: check tsig_key, tsig_algorithm and the server's key clause", true},
		{"zone not served", rfc2136.Options{}, rec("_acme-challenge.unknown.test", "unknown.test", "v"),
			"rfc2136: update unknown.test at ADDR: NOTAUTH: the server is not authoritative for zone unknown.test or TSIG key tlspilot. is not accepted", true},
		{"zone not updatable", rfc2136.Options{}, rec("_acme-challenge.readonly.test", "readonly.test", "v"),
			"rfc2136: update readonly.test at ADDR: REFUSED: the zone's update-policy/allow-update does not grant TSIG key tlspilot. for _acme-challenge.readonly.test", true},
		{"record outside zone", rfc2136.Options{}, rec("_acme-challenge.other.test", "example.test", "v"),
			"rfc2136: update example.test at ADDR: _acme-challenge.other.test. is not in zone example.test.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t, b, tt.opts)
			err := p.Present(t.Context(), []dns01.Record{tt.rec})
			want := strings.ReplaceAll(tt.want, "ADDR", b.Addr)
			if err == nil || err.Error() != want {
				t.Fatalf("error = %v\nwant    %s", err, want)
			}
			if !errors.Is(err, dns01.ErrUnchanged) {
				t.Errorf("error %v does not wrap ErrUnchanged", err)
			}
			if errors.Is(err, dns01.ErrConfig) != tt.config {
				t.Errorf("errors.Is(%v, ErrConfig) = %v, want %v", err, !tt.config, tt.config)
			}
		})
	}
	wantTXT(t, b, "_acme-challenge.example.test")
}

func TestServerDown(t *testing.T) {
	b := startBIND(t, "")
	p := newProvider(t, b, rfc2136.Options{})
	b.Stop()
	err := p.Present(t.Context(), []dns01.Record{rec("_acme-challenge.example.test", "example.test", "v")})
	if err == nil || !strings.HasPrefix(err.Error(), "rfc2136: update example.test at "+b.Addr+": ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error = %v, want one naming zone, server and the refused connection", err)
	}
	if !errors.Is(err, dns01.ErrUnchanged) {
		t.Errorf("a refused connection changes nothing, but %v does not wrap ErrUnchanged", err)
	}
	if errors.Is(err, dns01.ErrConfig) {
		t.Errorf("a server that is down may come back, but %v wraps ErrConfig", err)
	}
}

// TestConfigErrorAfterChange: when one zone's update went through and
// another's was refused for its key, the error no longer wraps
// ErrUnchanged but still wraps ErrConfig.
func TestConfigErrorAfterChange(t *testing.T) {
	b := startBIND(t, "")
	p := newProvider(t, b, rfc2136.Options{})
	err := p.Present(t.Context(), []dns01.Record{
		rec("_acme-challenge.example.test", "example.test", "v"),
		rec("_acme-challenge.readonly.test", "readonly.test", "v"),
	})
	if err == nil || !strings.Contains(err.Error(), ": REFUSED: ") {
		t.Fatalf("error = %v, want the refused update", err)
	}
	if errors.Is(err, dns01.ErrUnchanged) {
		t.Errorf("example.test was changed, but %v wraps ErrUnchanged", err)
	}
	if !errors.Is(err, dns01.ErrConfig) {
		t.Errorf("%v does not wrap ErrConfig", err)
	}
	wantTXT(t, b, "_acme-challenge.example.test", "v")
}

func TestNewChecks(t *testing.T) {
	for _, tt := range []struct {
		opts rfc2136.Options
		want string
	}{
		{rfc2136.Options{TSIGKey: "k", TSIGSecret: "c2VjcmV0"}, "no server"},
		{rfc2136.Options{Server: "ns1", TSIGSecret: "c2VjcmV0"}, "no TSIG key name"},
		{rfc2136.Options{Server: "ns1", TSIGKey: "k"}, "no TSIG secret"},
		{rfc2136.Options{Server: "ns1", TSIGKey: "k", TSIGSecret: "c2VjcmV0", TSIGAlgorithm: "hmac-md5"}, "want hmac-sha256 or hmac-sha512"},
	} {
		if _, err := rfc2136.New(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.opts, err, tt.want)
		}
	}
}
