package main

import (
	"testing"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/server"
)

// TestServerSitesProxyTLS: how a site's and each route's https://
// upstreams are checked reaches the server.
func TestServerSitesProxyTLS(t *testing.T) {
	cfg := &config.Config{Sites: []config.Site{{Names: []string{"a.example"}, Proxy: []string{"https://10.0.0.5"},
		ProxyTLS: config.ProxyTLS{CAFile: "/etc/ca.pem", ServerName: "app.internal"},
		Routes:   []config.Route{{Path: "/api/", Proxy: []string{"https://10.0.0.6"}, ProxyTLS: config.ProxyTLS{ServerName: "api.internal"}}}}}}
	got := serverSites(cfg, nil)
	if want := (server.ProxyTLS{CAFile: "/etc/ca.pem", ServerName: "app.internal"}); got[0].ProxyTLS != want {
		t.Errorf("site: %+v, want %+v", got[0].ProxyTLS, want)
	}
	if want := (server.ProxyTLS{ServerName: "api.internal"}); got[0].Routes[0].ProxyTLS != want {
		t.Errorf("route: %+v, want %+v", got[0].Routes[0].ProxyTLS, want)
	}
}

// TestSecretEnvHidden: the variable tsig_secret_env names is what the
// reload and notify commands do not inherit.
func TestSecretEnvHidden(t *testing.T) {
	if got := secretEnv(&config.Config{}); got != nil {
		t.Errorf("no [dns]: %q", got)
	}
	if got := secretEnv(&config.Config{DNS: &config.DNS{TSIGSecretEnv: "TSIG_SECRET"}}); len(got) != 1 || got[0] != "TSIG_SECRET" {
		t.Errorf("tsig_secret_env: %q", got)
	}
}
