package tlspilot

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tlspilot/tlspilot/dns01/rfc2136"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// TestTrialOrderLimitAlone: an OrderLimit given without an OrderWindow
// (or the reverse) is kept, the other field taking its default. Found by
// a trial: either one left zero put both back to their defaults, so a
// Manager told to place at most 2 orders placed up to 1,000 a minute.
func TestTrialOrderLimitAlone(t *testing.T) {
	cases := []struct {
		name   string
		ca     string
		limit  int
		window time.Duration
		wantN  int
		wantW  time.Duration
	}{
		{"limit alone", noCA, 2, 0, 2, time.Minute},
		{"window alone", noCA, 0, time.Hour, 1000, time.Hour},
		{"limit alone, Let's Encrypt", LetsEncryptStaging, 50, 0, 50, 3 * time.Hour},
		{"window alone, Let's Encrypt", LetsEncryptStaging, 0, 6 * time.Hour, 300, 6 * time.Hour},
		{"both defaults", noCA, 0, 0, 1000, time.Minute},
		{"both given", noCA, 7, time.Second, 7, time.Second},
	}
	for _, tc := range cases {
		cfg := noCAConfig(t)
		cfg.CA, cfg.OrderLimit, cfg.OrderWindow = tc.ca, tc.limit, tc.window
		m, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n, w := int(m.limiter.n), m.limiter.per; n != tc.wantN || w != tc.wantW {
			t.Errorf("%s: OrderLimit %d, OrderWindow %s: limiter allows %d per %s, want %d per %s",
				tc.name, tc.limit, tc.window, n, w, tc.wantN, tc.wantW)
		}
	}
}

// countingDeployer counts the certificates written through it.
type countingDeployer struct {
	mu     sync.Mutex
	writes int
}

func (d *countingDeployer) Write(context.Context, []byte, []byte) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes++
	return true, nil
}

func (d *countingDeployer) Reload(context.Context) error { return nil }

func (d *countingDeployer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// TestTrialRemanageForgetsOptions: a certificate unmanaged and managed
// again takes the options of the new Cert only. Found by a trial: the
// Deployer, challenge directory and standalone address of the first Cert
// stayed, so the certificate managed again without a Deployer was still
// written through the old one (and its challenges still answered on the
// old port and written into the old directory).
func TestTrialRemanageForgetsOptions(t *testing.T) {
	ctx := t.Context()
	m, err := New(ctx, noCAConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	const name = "remanage.example.test"
	chain, key := importedCert(t, 1, time.Now().Add(-time.Hour), name)
	if _, err := m.Import(ctx, Imported{Names: []string{name}, ChainPEM: chain, Key: key, CA: noCA}); err != nil {
		t.Fatal(err)
	}
	old := &countingDeployer{}
	first := Cert{Names: []string{name}, ChallengeDir: t.TempDir(), Standalone: "127.0.0.1:1",
		Deployers: map[KeyType]Deployer{ECDSAP256: old}}
	if err := m.ManageCerts(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := m.Deploy(ctx); err != nil || old.count() != 1 {
		t.Fatalf("first Deploy: %v, %d writes; want 1", err, old.count())
	}
	m.Unmanage(name)
	if err := m.ManageCerts(ctx, Cert{Names: []string{name}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Deploy(ctx); err != nil {
		t.Fatal(err)
	}
	if n := old.count(); n != 1 {
		t.Errorf("managed again without a Deployer: written %d times through the old Deployer, want 1", n)
	}
	id := m.Status()[0].ID
	if d, a := m.extras.dir(id), m.extras.addr(id); d != "" || a != "" {
		t.Errorf("managed again without them: challenge directory %q, standalone address %q; want none", d, a)
	}
}

// TestTrialConfigFailsAtNew: an EAB or a UserAgent that could only fail
// at the first request to the CA is refused by New, naming the field, as
// Config promises. Found by a trial: New took them, and then an EAB
// without a key identifier panicked inside the ACME library at the first
// registration (taking a server down from Run), a key that is not
// base64url failed every registration, and a UserAgent with a line
// break failed every request to the CA.
func TestTrialConfigFailsAtNew(t *testing.T) {
	const key = "c2VjcmV0LWhtYWMta2V5LWZyb20tdGhlLWNh" // base64url, no padding
	cases := []struct {
		name   string
		change func(*Config)
		errHas string
	}{
		{"EAB empty", func(c *Config) { c.EAB = &EAB{} }, "EAB"},
		{"EAB no key id", func(c *Config) { c.EAB = &EAB{HMACKey: key} }, "EAB"},
		{"EAB no key", func(c *Config) { c.EAB = &EAB{KeyID: "kid"} }, "EAB"},
		{"EAB key not base64url", func(c *Config) { c.EAB = &EAB{KeyID: "kid", HMACKey: "not a key!"} }, "EAB"},
		{"EAB key padded", func(c *Config) { c.EAB = &EAB{KeyID: "kid", HMACKey: key + "=="} }, "EAB"},
		{"UserAgent line break", func(c *Config) { c.UserAgent = "myapp/1.0\r\nX-Injected: 1" }, "UserAgent"},
		{"UserAgent NUL", func(c *Config) { c.UserAgent = "myapp/\x00" }, "UserAgent"},
	}
	for _, tc := range cases {
		cfg := noCAConfig(t)
		tc.change(&cfg)
		_, err := New(t.Context(), cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: New = %v; want a config error naming %s", tc.name, err, tc.errHas)
		}
	}
	for _, change := range []func(*Config){
		func(c *Config) { c.EAB = &EAB{KeyID: "kid", HMACKey: key} },
		func(c *Config) { c.UserAgent = "myapp/1.0 (+https://example.test/bot)" },
	} {
		cfg := noCAConfig(t)
		change(&cfg)
		if _, err := New(t.Context(), cfg); err != nil {
			t.Errorf("New: %v", err)
		}
	}
}

// TestTrialRegisterBadEABNoPanic: a Manager whose EAB New could not check
// (set by a caller of the ACME client directly) gets an error from the
// registration, never a panic. Found by a trial: an empty key identifier
// crashed the process inside the ACME library.
func TestTrialRegisterBadEABNoPanic(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	c, err := acmeclient.New(acmeclient.Config{Directory: p.DirectoryURL, Roots: p.Roots})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, eab := range []acmeclient.EAB{{}, {HMACKey: "c2VjcmV0"}, {KeyID: "kid"}, {KeyID: "kid", HMACKey: "not a key!"}} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Register with EAB %+v panicked: %v", eab, r)
				}
			}()
			_, err := c.Register(t.Context(), key, acmeclient.RegisterOptions{AgreeTerms: true, EAB: &eab})
			if err == nil || !strings.Contains(err.Error(), "external account binding") {
				t.Errorf("Register with EAB %+v = %v; want an external account binding error", eab, err)
			}
		}()
	}
}

// TestTrialTemporaryCertRenewed: a name still waiting for its first
// certificate is served a temporary one that is valid now, however long
// the wait. Found by a trial: the temporary certificate made at the first
// handshake (valid 7 days) was served for ever, so after a week of a CA
// refusing, clients were shown an expired certificate rather than the
// stand-in the documentation promises.
func TestTrialTemporaryCertRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(t.Context(), noCAConfig(t))
		if err != nil {
			t.Fatal(err)
		}
		const name = "waiting.example.test"
		if err := m.Manage(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		for day := range 30 {
			c, err := m.GetCertificate(helloFor(name))
			if err != nil {
				t.Fatalf("day %d: %v", day, err)
			}
			if now := time.Now(); now.Before(c.Leaf.NotBefore) || !now.Before(c.Leaf.NotAfter) {
				t.Fatalf("day %d: temporary certificate valid %s to %s, served at %s", day, c.Leaf.NotBefore, c.Leaf.NotAfter, now)
			}
			time.Sleep(24 * time.Hour)
		}
	})
}

// TestTrialWarnWindowChecked: a WarnWindow that cannot mean what was
// written is refused by New, naming the field. Found by a trial: a
// Fraction of 25 (meant as 25%) or a negative one, and a negative
// Duration, were silently replaced by the default 10%.
func TestTrialWarnWindowChecked(t *testing.T) {
	for _, w := range []WarnWindow{{Fraction: 25}, {Fraction: 1}, {Fraction: -0.1}, {Fraction: math.NaN()}, {Duration: -time.Hour}} {
		cfg := noCAConfig(t)
		cfg.WarnWindow = w
		if _, err := New(t.Context(), cfg); err == nil || !strings.HasPrefix(err.Error(), "config: WarnWindow") {
			t.Errorf("WarnWindow %#v: New = %v; want a config error naming WarnWindow", w, err)
		}
	}
	for _, w := range []WarnWindow{{}, {Fraction: 0.25}, {Duration: 7 * 24 * time.Hour}} {
		cfg := noCAConfig(t)
		cfg.WarnWindow = w
		if _, err := New(t.Context(), cfg); err != nil {
			t.Errorf("WarnWindow %#v: %v", w, err)
		}
	}
}

// nilMetrics is a Metrics whose methods need their receiver.
type nilMetrics struct{ n int }

func (m *nilMetrics) ACMERequest(string, int, time.Duration) { m.n++ }
func (m *nilMetrics) Challenge(string, bool)                 { m.n++ }
func (m *nilMetrics) DNSPropagation(time.Duration)           { m.n++ }

// TestTrialNilInterfaceRefused: a Storage, DNSProvider, Metrics or
// Deployer that is a nil pointer (the result of a constructor whose error
// was not checked) is refused with an error naming the field, never a
// panic. Found by a trial: New panicked on a nil *fsstore.Store or
// *pgstore.Store, and the others would have panicked at first use, in
// the Manager's goroutines.
func TestTrialNilInterfaceRefused(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		errHas string
	}{
		{"nil *fsstore.Store", func(c *Config) { c.Storage, c.KeyFile = (*fsstore.Store)(nil), filepath.Join(c.StorageDir, "kek") }, "Storage"},
		{"nil *pgstore.Store", func(c *Config) { c.Storage, c.KeyFile = (*pgstore.Store)(nil), filepath.Join(c.StorageDir, "kek") }, "Storage"},
		{"nil *rfc2136.Provider", func(c *Config) { c.DNSProvider = (*rfc2136.Provider)(nil) }, "DNSProvider"},
		{"nil Metrics", func(c *Config) { c.Metrics = (*nilMetrics)(nil) }, "Metrics"},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: New panicked: %v", tc.name, r)
				}
			}()
			cfg := noCAConfig(t)
			tc.change(&cfg)
			_, err := New(t.Context(), cfg)
			if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: New = %v; want a config error naming %s", tc.name, err, tc.errHas)
			}
		}()
	}
	m, err := New(t.Context(), noCAConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	c := Cert{Names: []string{"nil-deployer.example.test"}, Deployers: map[KeyType]Deployer{ECDSAP256: (*deploy.Files)(nil)}}
	if err := m.ManageCerts(t.Context(), c); err == nil || !strings.Contains(err.Error(), "Deployers") {
		t.Errorf("ManageCerts with a nil *deploy.Files = %v; want an error naming Deployers", err)
	}
	if st := m.Status(); len(st) != 0 {
		t.Errorf("managed after the refusal: %+v", st)
	}
}

// TestTrialNoKeyNeededWithoutKeyFile: ReadStatus and Clean, which need no
// key-encryption key, work on a custom Storage given without a KeyFile,
// as their documentation says; New, which needs one, still asks for it.
// Found by a trial: both refused with "KeyFile is required", so a status
// page over PostgreSQL had to name a key file it never opened.
func TestTrialNoKeyNeededWithoutKeyFile(t *testing.T) {
	st, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{CA: noCA, Storage: st}
	if r := ReadStatus(t.Context(), cfg, Cert{Names: []string{"status.example.test"}}); r.Error != "" || len(r.Certificates) != 1 {
		t.Errorf("ReadStatus without KeyFile: error %q, %d certificates; want the one, pending", r.Error, len(r.Certificates))
	}
	if _, err := Clean(t.Context(), cfg, CleanOptions{DryRun: true}); err != nil {
		t.Errorf("Clean without KeyFile: %v", err)
	}
	if _, err := New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "KeyFile") {
		t.Errorf("New without KeyFile = %v; want an error naming KeyFile", err)
	}
}

// TestTrialObtainCSRNilCSR: ObtainCSR given no CSR says so, never panics.
// Found by a trial: a nil CSR (a parse error not checked) panicked.
func TestTrialObtainCSRNilCSR(t *testing.T) {
	prov, err := rfc2136.New(rfc2136.Options{Server: "127.0.0.1:1", TSIGKey: "tlspilot.", TSIGSecret: "c2VjcmV0"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := noCAConfig(t)
	cfg.DNSProvider = prov
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("ObtainCSR with a nil CSR panicked: %v", r)
		}
	}()
	if _, err := m.ObtainCSR(t.Context(), "agent-1", nil, []string{"a.example.test"}); err == nil || !strings.Contains(err.Error(), "CSR") {
		t.Errorf("ObtainCSR with a nil CSR = %v; want an error saying there is no CSR", err)
	}
}

// TestTrialRunLeavesNoConnections: once Run has returned, the Manager
// keeps no goroutine behind: its keep-alive connections to the CA are
// closed too. Found by a trial: after Run returned, goroutine-leak checks
// found the CA client's connection goroutines (net/http persistConn)
// alive until the transport's 90-second idle timeout.
func TestTrialRunLeavesNoConnections(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	m, err := New(t.Context(), testConfig(t, p, ev))
	if err != nil {
		t.Fatal(err)
	}
	serveChallenges(t, p, m)
	if err := m.Manage(t.Context(), "leak.example.test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	// A closed connection's goroutines end once they see it closed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := clientConnGoroutines()
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Run returned, connections to the CA are still open:\n%s", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientConnGoroutines returns the stacks of the goroutines of HTTP
// client connections in this process, "" if none.
func clientConnGoroutines() string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*persistConn)") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
