package tlspilot

import (
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestNewRefusesBadConfig: mistakes in Config are refused by New, with an
// error naming the field, rather than at every order after contacting the
// CA (or never: a 1ns LeaseTTL lost every lock). Found by a user's trial.
func TestNewRefusesBadConfig(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		errHas string
	}{
		{"mailto", func(c *Config) { c.Email = "mailto:ops@example.test" }, "Email"},
		{"not an address", func(c *Config) { c.Email = "not an email" }, "Email"},
		{"display name", func(c *Config) { c.Email = "Ops <ops@example.test>" }, "Email"},
		{"two addresses", func(c *Config) { c.Email = "a@example.test, b@example.test" }, "Email"},
		{"space", func(c *Config) { c.Email = " ops@example.test" }, "Email"},
		{"lease 1ns", func(c *Config) { c.LeaseTTL = time.Nanosecond }, "LeaseTTL"},
		{"lease 500ms", func(c *Config) { c.LeaseTTL = 500 * time.Millisecond }, "LeaseTTL"},
		{"lease negative", func(c *Config) { c.LeaseTTL = -time.Second }, "LeaseTTL"},
		{"workers", func(c *Config) { c.Workers = -1 }, "Workers"},
		{"order limit", func(c *Config) { c.OrderLimit = -5 }, "OrderLimit"},
		{"order window", func(c *Config) { c.OrderWindow = -time.Minute }, "OrderWindow"},
		{"retry min negative", func(c *Config) { c.RetryMin = -time.Second }, "RetryMin"},
		{"retry max negative", func(c *Config) { c.RetryMin, c.RetryMax = 0, -time.Second }, "RetryMax"},
		{"retry min > max", func(c *Config) { c.RetryMin, c.RetryMax = 2*time.Hour, time.Hour }, "RetryMin"},
		{"retry min > default max", func(c *Config) { c.RetryMin, c.RetryMax = 12*time.Hour, 0 }, "RetryMax"},
	}
	for _, tc := range cases {
		cfg := noCAConfig(t)
		tc.change(&cfg)
		_, err := New(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("%s: New = %v; want a config error naming %s", tc.name, err, tc.errHas)
		}
	}
	// What is right still starts.
	for _, change := range []func(*Config){
		func(c *Config) { c.Email = "ops@example.test" },
		func(c *Config) { c.LeaseTTL = time.Second },
		func(c *Config) { c.RetryMin, c.RetryMax = time.Minute, time.Minute },
		func(c *Config) { c.RetryMin, c.RetryMax = 0, 0 },
	} {
		cfg := noCAConfig(t)
		change(&cfg)
		if _, err := New(t.Context(), cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

// TestManageRefusesBadCertOptions: a Standalone address that
// net.SplitHostPort refuses and a relative ChallengeDir are refused by
// ManageCerts, naming the field, before anything is managed.
func TestManageRefusesBadCertOptions(t *testing.T) {
	m, err := New(t.Context(), noCAConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cert   Cert
		errHas string
	}{
		{Cert{Names: []string{"a.example.test"}, Standalone: "localhost"}, "Standalone"},
		{Cert{Names: []string{"a.example.test"}, Standalone: "a:b:c"}, "Standalone"},
		{Cert{Names: []string{"a.example.test"}, ChallengeDir: "www/.well-known"}, "ChallengeDir"},
	}
	for _, tc := range cases {
		if err := m.ManageCerts(t.Context(), tc.cert); err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("ManageCerts(%+v) = %v; want an error naming %s", tc.cert, err, tc.errHas)
		}
	}
	if st := m.Status(); len(st) != 0 {
		t.Errorf("managed after refusals: %+v", st)
	}
	ok := Cert{Names: []string{"ok.example.test"}, Standalone: ":8080", ChallengeDir: t.TempDir()}
	if err := m.ManageCerts(t.Context(), ok); err != nil {
		t.Errorf("ManageCerts(%+v): %v", ok, err)
	}
}

// TestLeaseTTLMinimumObtains: the shortest LeaseTTL New accepts (1s, its
// renewal every third of it) holds its locks through an order. Measured
// on an idle machine, leases of 10ms and less were lost before their
// first renewal and 50ms sufficed: the minimum keeps a wide margin for a
// slow disk.
func TestLeaseTTLMinimumObtains(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	cfg.LeaseTTL = time.Second
	m := startManager(t, p, cfg)
	if err := m.Manage(t.Context(), "lease.example.test"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = m.Run(t.Context()) }()
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	if f := ev.of(EventFailed); len(f) != 0 {
		t.Errorf("with LeaseTTL 1s: %d failed attempts, first: %v", len(f), f[0].Err)
	}
}
