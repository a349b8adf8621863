package config

import (
	"path/filepath"
	"testing"
)

// TestProxyTLS: proxy_ca and proxy_server_name are read for a site and
// for a route, the file made absolute and the name normalised as site
// names are; a proxy without them checks upstreams the default way.
func TestProxyTLS(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, `[[site]]
names = ["a.example"]
proxy = "https://10.0.0.5:8443"
proxy_ca = "ca.pem"
proxy_server_name = "App.Internal."
[[site.route]]
path = "/api/"
proxy = ["http://127.0.0.1:8080", "https://10.0.0.6"]
proxy_server_name = "api.internal"
[[site.route]]
path = "/plain/"
proxy = "https://backend.example"
`)
	s := c.Sites[0]
	if want := (ProxyTLS{CAFile: filepath.Join(f.dir, "ca.pem"), ServerName: "app.internal"}); s.ProxyTLS != want {
		t.Errorf("site: %+v, want %+v", s.ProxyTLS, want)
	}
	if want := (ProxyTLS{ServerName: "api.internal"}); s.Routes[0].ProxyTLS != want {
		t.Errorf("route /api/: %+v, want %+v", s.Routes[0].ProxyTLS, want)
	}
	if s.Routes[1].ProxyTLS != (ProxyTLS{}) {
		t.Errorf("route /plain/: %+v, want none", s.Routes[1].ProxyTLS)
	}
}
