package tlspilot

import (
	"slices"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// noCA is a directory URL where no CA answers: New does not contact the
// CA, and an order fails at once.
const noCA = "https://127.0.0.1:9/dir"

// noCAConfig is a Config for tests that need no CA.
func noCAConfig(t *testing.T) Config {
	t.Helper()
	return Config{CA: noCA, StorageDir: t.TempDir(), Logger: testLogger(t), RetryMin: time.Second, RetryMax: 5 * time.Second}
}

// TestEventNamesAreCopies: a handler that changes Event.Names (a sort, or
// worse) changes nothing the Manager serves or orders; nor does changing
// what Status returned. Found by a user's trial: Event.Names was the
// Manager's own slice, and the next order was for the name the handler
// wrote.
func TestEventNamesAreCopies(t *testing.T) {
	cfg := noCAConfig(t)
	var got []Event
	cfg.OnEvent = func(e Event) {
		slices.Sort(e.Names)
		e.Names[0] = "other.example.test"
		got = append(got, e)
	}
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"z.example.test", "a.example.test"}
	if err := m.Manage(t.Context(), want...); err != nil {
		t.Fatal(err)
	}
	// No CA answers: the attempt fails and sends EventFailed.
	_ = m.Renew(t.Context(), RenewOptions{Force: true})
	if len(got) == 0 {
		t.Fatal("no event was sent")
	}
	st := m.Status()
	st[0].Names[0] = "status.example.test"
	if st := m.Status(); !slices.Equal(st[0].Names, want) {
		t.Errorf("after the handler changed Event.Names, the certificate's names are %v; want %v", st[0].Names, want)
	}
	m.mu.Lock()
	for _, e := range m.entries {
		if !slices.Equal(e.site.names, want) {
			t.Errorf("names ordered next: %v; want %v", e.site.names, want)
		}
	}
	m.mu.Unlock()
	if _, err := m.GetCertificate(helloFor("other.example.test")); err == nil {
		t.Error("a certificate is served for other.example.test, which nobody configured")
	}
	if _, err := m.GetCertificate(helloFor("z.example.test")); err != nil {
		t.Errorf("z.example.test: %v", err)
	}
}

// TestConfigSlicesAreCopies: changing a slice or struct given in Config
// after New changes nothing in the Manager. Before, New kept KeyTypes
// (and wrote its parsed values into the caller's array), Resolvers and
// EAB by reference.
func TestConfigSlicesAreCopies(t *testing.T) {
	cfg := noCAConfig(t)
	cfg.KeyTypes = []KeyType{ECDSAP256}
	cfg.DNSPropagation.Resolvers = []string{"192.0.2.53:53"}
	cfg.EAB = &EAB{KeyID: "kid", HMACKey: "aG1hYw"}
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.KeyTypes[0] = RSA2048
	cfg.DNSPropagation.Resolvers[0] = "198.51.100.53:53"
	cfg.EAB.KeyID = "other"
	if err := m.Manage(t.Context(), "keytype.example.test"); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); len(st) != 1 || st[0].KeyType != ECDSAP256 {
		t.Errorf("after the caller changed its KeyTypes: %+v; want one %s certificate", st, ECDSAP256)
	}
	if r := m.cfg.DNSPropagation.Resolvers; r[0] != "192.0.2.53:53" {
		t.Errorf("Resolvers followed the caller's slice: %v", r)
	}
	if m.cfg.EAB.KeyID != "kid" {
		t.Errorf("EAB followed the caller's struct: %+v", m.cfg.EAB)
	}
}

// TestGetCertificateLeaf: what GetCertificate serves has Leaf set, as
// autocert's has, for the temporary certificate and the CA's; it is
// parsed once, not per handshake. Found by a user's trial: code doing
// cert.Leaf.SerialNumber panicked.
func TestGetCertificateLeaf(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	const name = "leaf.example.test"
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	temp, err := m.GetCertificate(helloFor(name))
	if err != nil || temp.Leaf == nil || !slices.Equal(temp.Leaf.DNSNames, []string{name}) {
		t.Fatalf("temporary certificate: %v; want Leaf set for %s", err, name)
	}

	serveChallenges(t, p, m)
	go func() { _ = m.Run(t.Context()) }()
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	c, err := m.GetCertificate(helloFor(name))
	if err != nil {
		t.Fatal(err)
	}
	if c.Leaf == nil {
		t.Fatal("the CA's certificate is served with Leaf nil")
	}
	if want := m.Status()[0].Serial; c.Leaf.SerialNumber.Text(16) != want || !slices.Equal(c.Leaf.Raw, c.Certificate[0]) {
		t.Errorf("Leaf: serial %x, want %s, and the DER of Certificate[0]", c.Leaf.SerialNumber, want)
	}
	again, _ := m.GetCertificate(helloFor(name))
	if again.Leaf != c.Leaf {
		t.Error("Leaf parsed again for the second handshake")
	}
}
