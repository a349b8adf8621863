package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// full uses every key the package knows.
const full = `email = "ops@example.com"
ca = "https://127.0.0.1:14000/dir"
ca_root = "$DIR/ca.pem"
agree_terms = true
keep_deactivated_account = true
eab_key_id = "kid-1"
eab_hmac_file = "eab.key"
profile = "shortlived"
storage = "state"
http_listen = "127.0.0.1:5002"
https_listen = "[::1]:5001"
user = "root"
group = "0"
access_log = "$DIR/access.log"
log_level = "debug"
key_type = ["ecdsa-p384", "RSA2048"]
challenge = "tls-alpn-01"

[dns]
provider = "rfc2136"
server = "127.0.0.1"
tsig_key = "tlspilot."
tsig_algorithm = "HMAC-SHA512"
tsig_secret_file = "tsig.secret"
zone = "Example.COM."
resolvers = ["127.0.0.1:5353", "::1"]
authoritative_port = 5353
propagation_timeout = "2m30s"

[[site]]
names = ["Example.COM", "www.example.com."]
root = "www"
default = true
http_redirect = false
hsts = true
csp = "default-src 'self'"
challenge = "http-01"
key_type = "rsa4096"

[site.headers]
X-Frame-Options = "DENY"
"Cache-Control" = "no-store"

[[site.route]]
path = "/api/"
proxy = ["http://127.0.0.1:8080", "https://backend.example:8443"]

[[site.route]]
path = "/old/"
redirect = "https://example.org{uri}"

[[site.route]]
path = "/files/"
root = "$DIR/www/"

[[site]]
names = "*.example.net"
challenge = "dns-01"
proxy = "http://127.0.0.1:9000"

[[site]]
names = ["www.example.com.br", "example.com"]
cert_file = "site.pem"
key_file = "site.key"
redirect = "https://example.org/"
`

func TestFullConfig(t *testing.T) {
	f := newFixture(t)
	f.write(t, "tlspilot.toml", strings.ReplaceAll(full, "$DIR", f.dir), 0o644)
	// "example.com" is in the certificate, "www.example.com.br" is not.
	_, err := Load(filepath.Join(f.dir, "tlspilot.toml"))
	if err == nil || !strings.Contains(err.Error(), "tlspilot.toml:62: site[3].names[2]: example.com is already a name of site[1] (line 30)") ||
		!strings.Contains(err.Error(), "tlspilot.toml:63: site[3].cert_file: "+f.dir+"/site.pem does not cover www.example.com.br") {
		t.Fatalf("got %v", err)
	}

	text := strings.Replace(full, `names = ["www.example.com.br", "example.com"]`, `names = ["WWW.example.com"]`, 1)
	text = strings.Replace(text, `names = ["Example.COM", "www.example.com."]`, `names = ["Example.COM"]`, 1)
	c := f.mustParse(t, text)
	d := f.dir
	if e := c.Errorf("https_listen", "address already in use"); e.Error() != d+"/tlspilot.toml:11: https_listen: address already in use" {
		t.Errorf("Errorf: %v", e)
	}
	if e := c.Errorf("site[2].proxy[1]", "refused"); e.Line != 59 {
		t.Errorf("Errorf: %v", e)
	}
	want := &Config{
		pos:        c.pos,
		File:       filepath.Join(d, "tlspilot.toml"),
		Email:      "ops@example.com",
		CA:         "https://127.0.0.1:14000/dir",
		CARoots:    []string{d + "/ca.pem"},
		AgreeTerms: true,
		EABKeyID:   "kid-1",

		KeepDeactivatedAccount: true,
		EABHMACFile:            d + "/eab.key",
		Profile:                "shortlived",
		Storage:                d + "/state",
		HTTPListen:             "127.0.0.1:5002",
		HTTPSListen:            "[::1]:5001",
		User:                   "root",
		Group:                  "0",
		AccessLog:              d + "/access.log",
		LogLevel:               "debug",
		LogFormat:              "text", // log_format, log_file: friction_test.go
		LogFile:                "stderr",
		AdminListen:            DefaultAdminListen, // admin keys: admin_test.go
		CertsAdminListen:       AdminOff,
		WarnWindow:             tenPercent, // notify keys and warn_window: notify_test.go
		KeyTypes:               []string{"ecdsa-p384", "rsa2048"},
		Challenge:              "tls-alpn-01",
		TLSProfile:             "intermediate", // tls_profile, max_connections, trusted_proxies: limits_test.go
		DNS: &DNS{
			Provider:           "rfc2136",
			Server:             "127.0.0.1:53",
			TSIGKey:            "tlspilot.",
			TSIGAlgorithm:      "hmac-sha512",
			TSIGSecretFile:     d + "/tsig.secret",
			Zone:               "example.com",
			Resolvers:          []string{"127.0.0.1:5353", "[::1]:53"},
			AuthoritativePort:  5353,
			PropagationTimeout: 150 * time.Second,
		},
		Sites: []Site{{
			Line:         30,
			Names:        []string{"example.com"},
			Root:         d + "/www",
			Default:      true,
			HTTPRedirect: false,
			HSTS:         true,
			CSP:          "default-src 'self'",
			Challenge:    "http-01",
			KeyTypes:     []string{"rsa4096"},
			Headers:      map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"},
			TLSProfile:   "intermediate",
			Routes: []Route{
				{Line: 44, Path: "/api/", Proxy: []string{"http://127.0.0.1:8080", "https://backend.example:8443"}},
				{Line: 48, Path: "/old/", Redirect: "https://example.org{uri}"},
				{Line: 52, Path: "/files/", Root: d + "/www"},
			},
		}, {
			Line:         56,
			Names:        []string{"*.example.net"},
			Proxy:        []string{"http://127.0.0.1:9000"},
			Challenge:    "dns-01",
			KeyTypes:     []string{"ecdsa-p384", "rsa2048"},
			HTTPRedirect: true,
			TLSProfile:   "intermediate",
		}, {
			Line:         61,
			Names:        []string{"www.example.com"},
			CertFile:     d + "/site.pem",
			KeyFile:      d + "/site.key",
			Redirect:     "https://example.org/",
			HTTPRedirect: true,
			TLSProfile:   "intermediate",
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
		for i := range min(len(c.Sites), len(want.Sites)) {
			if !reflect.DeepEqual(c.Sites[i], want.Sites[i]) {
				t.Errorf("site %d:\n got %+v\nwant %+v", i+1, c.Sites[i], want.Sites[i])
			}
		}
		if !reflect.DeepEqual(c.DNS, want.DNS) {
			t.Errorf("dns:\n got %+v\nwant %+v", c.DNS, want.DNS)
		}
	}
}

func TestDefaults(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, `[[site]]
names = ["example.com"]
`)
	if e := c.Errorf("http_listen", "address already in use"); e.Error() != c.File+": http_listen: address already in use" {
		t.Errorf("Errorf for a default: %v", e)
	}
	want := &Config{
		pos:              c.pos,
		File:             filepath.Join(f.dir, "tlspilot.toml"),
		CA:               tlspilot.LetsEncrypt,
		HTTPListen:       ":80",
		HTTPSListen:      ":443",
		AccessLog:        "stdout",
		LogLevel:         "info",
		LogFormat:        "text",
		LogFile:          "stderr",
		AdminListen:      "127.0.0.1:2019",
		CertsAdminListen: AdminOff,
		WarnWindow:       tenPercent,
		KeyTypes:         []string{"ecdsa-p256"},
		Challenge:        "http-01",
		TLSProfile:       "intermediate",
		Sites: []Site{{
			Line:         1,
			Names:        []string{"example.com"},
			Challenge:    "http-01",
			KeyTypes:     []string{"ecdsa-p256"},
			HTTPRedirect: true,
			TLSProfile:   "intermediate",
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}

	empty := f.mustParse(t, "")
	if len(empty.Sites) != 0 || empty.DNS != nil || empty.HTTPSListen != ":443" {
		t.Errorf("empty file: %+v", empty)
	}
}

func TestDNSDefaults(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, `[dns]
provider = "rfc2136"
server = "ns1.example.com"
tsig_key = "tlspilot."
tsig_secret_file = "tsig.secret"
`)
	want := &DNS{Provider: "rfc2136", Server: "ns1.example.com:53", TSIGKey: "tlspilot.",
		TSIGAlgorithm: "hmac-sha256", TSIGSecretFile: f.dir + "/tsig.secret"}
	if !reflect.DeepEqual(c.DNS, want) {
		t.Errorf("got %+v, want %+v", c.DNS, want)
	}
}

func TestKeyTypes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		config string
		global []string
		site   []string
	}{
		{`key_type = "rsa3072"`, []string{"rsa3072"}, []string{"rsa3072"}},
		{`key_type = ["ecdsa-p256", "rsa2048"]`, []string{"ecdsa-p256", "rsa2048"}, []string{"ecdsa-p256", "rsa2048"}},
		{`key_type = [" ECDSA-P384 "]`, []string{"ecdsa-p384"}, []string{"ecdsa-p384"}},
		{"key_type = \"rsa2048\"\n[[site]]\nnames = \"a.example\"\nkey_type = [\"ecdsa-p256\", \"rsa4096\"]", []string{"rsa2048"}, []string{"ecdsa-p256", "rsa4096"}},
		{"[[site]]\nnames = \"a.example\"\nkey_type = \"ecdsa-p384\"", []string{"ecdsa-p256"}, []string{"ecdsa-p384"}},
	}
	for _, tt := range tests {
		config := tt.config
		if !strings.Contains(config, "[[site]]") {
			config += "\n[[site]]\nnames = \"a.example\"\n"
		}
		c := f.mustParse(t, config)
		if !reflect.DeepEqual(c.KeyTypes, tt.global) || !reflect.DeepEqual(c.Sites[0].KeyTypes, tt.site) {
			t.Errorf("%q: global %q site %q, want %q and %q", tt.config, c.KeyTypes, c.Sites[0].KeyTypes, tt.global, tt.site)
		}
	}
}

func TestDurations(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(filepath.Join(f.dir, "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, "hooks/dns", "#!/bin/sh\n", 0o755) // the exec provider's command must exist
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"60s", time.Minute},
		{"5m", 5 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"1500ms", 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		c := f.mustParse(t, "[dns]\nprovider = \"exec\"\ncommand = \"hooks/dns\"\ntimeout = \""+tt.in+"\"\npropagation_timeout = \""+tt.in+"\"\n")
		if c.DNS.Timeout != tt.want || c.DNS.PropagationTimeout != tt.want {
			t.Errorf("%q: got %v and %v, want %v", tt.in, c.DNS.Timeout, c.DNS.PropagationTimeout, tt.want)
		}
		if c.DNS.Command != f.dir+"/hooks/dns" {
			t.Errorf("command %q not resolved against the config's directory", c.DNS.Command)
		}
	}
	for _, bad := range []string{"0s", "60", "5 m", "-1s", "1d"} {
		_, err := f.parse(t, "[dns]\nprovider = \"exec\"\ncommand = \"dns-hook\"\ntimeout = \""+bad+"\"\n")
		if err == nil || !strings.Contains(err.Error(), "tlspilot.toml:4: dns.timeout: \""+bad+"\": want a positive duration") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

// TestDurationTooShort: every duration key refuses a value under a
// second at its line: "1ns" or "5ms" (a unit mistyped) would cut off
// every hook run, webhook delivery or DNS wait at once, failing each
// notification or order without saying why.
func TestDurationTooShort(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(filepath.Join(f.dir, "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, "hooks/dns", "#!/bin/sh\n", 0o755)
	for _, key := range []string{"timeout", "propagation_timeout"} {
		for _, short := range []string{"1ns", "5ms", "999ms"} {
			_, err := f.parse(t, "[dns]\nprovider = \"exec\"\ncommand = \"hooks/dns\"\n"+key+" = \""+short+"\"\n")
			if err == nil || !strings.Contains(err.Error(), "tlspilot.toml:4: dns."+key+": \""+short+"\": shorter than 1s") {
				t.Errorf("dns.%s = %q: got %v", key, short, err)
			}
		}
	}
	_, err := f.parse(t, "notify_command = \"true\"\nnotify_timeout = \"10ms\"\n")
	if err == nil || !strings.Contains(err.Error(), "tlspilot.toml:2: notify_timeout: \"10ms\": shorter than 1s") {
		t.Errorf("notify_timeout = \"10ms\": got %v", err)
	}
	if _, err := f.parse(t, "notify_command = \"true\"\nnotify_timeout = \"1s\"\n"); err != nil {
		t.Errorf("notify_timeout = \"1s\": %v", err)
	}
}

func TestNamesOnlySiteAndRoutes(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, `site = [
  {names = "a.example", route = [{path = "/", root = "www"}]},
]`)
	s := c.Sites[0]
	if s.Line != 2 || len(s.Routes) != 1 || s.Routes[0].Line != 2 || s.Routes[0].Root != f.dir+"/www" {
		t.Errorf("inline site: %+v", s)
	}
	if !strings.Contains(c.Summary(), "  serves: 404 outside its routes\n  route /: static files from "+f.dir+"/www\n") {
		t.Errorf("summary:\n%s", c.Summary())
	}
	bare := f.mustParse(t, `[[site]]
names = "a.example"`)
	if !strings.Contains(bare.Summary(), "  serves: 404 (no root, proxy, redirect or route)\n") {
		t.Errorf("summary:\n%s", bare.Summary())
	}
}

// TestRelativeToConfig checks that relative paths are resolved against
// the config file's directory, not the working directory.
func TestRelativeToConfig(t *testing.T) {
	f := newFixture(t)
	f.write(t, "tlspilot.toml", "storage = \"data\"\n[[site]]\nnames = \"a.example\"\nroot = \"www\"\n", 0o644)
	t.Chdir(filepath.Dir(f.dir))
	c, err := Load(filepath.Join(filepath.Base(f.dir), "tlspilot.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sites[0].Root != f.dir+"/www" || c.Storage != f.dir+"/data" {
		t.Errorf("root %q, storage %q", c.Sites[0].Root, c.Storage)
	}
}

func TestDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, sysErr := os.Stat(SystemPath)
	p, err := DefaultPath()
	switch {
	case sysErr == nil && p != SystemPath:
		t.Errorf("got %q, %v; want %s", p, err, SystemPath)
	case sysErr != nil && (err == nil || !strings.Contains(err.Error(), "neither ./tlspilot.toml nor /etc/tlspilot/tlspilot.toml exists")):
		t.Errorf("got %q, %v; want an error naming both places", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, LocalPath), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := DefaultPath(); p != LocalPath || err != nil {
		t.Errorf("got %q, %v; want %s", p, err, LocalPath)
	}
}

func TestSummary(t *testing.T) {
	f := newFixture(t)
	text := strings.Replace(full, `names = ["www.example.com.br", "example.com"]`, `names = ["WWW.example.com"]`, 1)
	text = strings.Replace(text, `names = ["Example.COM", "www.example.com."]`, `names = ["Example.COM"]`, 1)
	c := f.mustParse(t, text)
	got := strings.ReplaceAll(c.Summary(), f.dir, "$DIR")
	want := `config $DIR/tlspilot.toml
listen: http 127.0.0.1:5002, https [::1]:5001
ca: https://127.0.0.1:14000/dir (account ops@example.com, terms agreed, EAB key kid-1, profile shortlived, never replaced if deactivated)
storage: $DIR/state
runs as: user root, group 0 after binding
dns-01: rfc2136 updates to 127.0.0.1:53, key tlspilot. (hmac-sha512), zone example.com
site[1] line 30: example.com (default site)
  certificate: ACME http-01, rsa4096
  serves: static files from $DIR/www
  route /api/: proxy to http://127.0.0.1:8080, https://backend.example:8443
  route /old/: redirect to https://example.org{uri}
  route /files/: static files from $DIR/www
  also served over http, hsts, csp, 2 extra headers
site[2] line 56: *.example.net
  certificate: ACME dns-01, ecdsa-p384 + rsa2048
  serves: proxy to http://127.0.0.1:9000
  http redirects to https
site[3] line 61: www.example.com
  certificate: files $DIR/site.pem, $DIR/site.key
  serves: redirect to https://example.org/
  http redirects to https
3 sites, 2 names with certificates from the CA
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// Counts in words: one site and one name, and a config without sites.
	one := f.mustParse(t, "[[site]]\nnames = [\"a.example\"]\n").Summary()
	if !strings.HasSuffix(one, "\n1 site, 1 name with certificates from the CA\n") {
		t.Errorf("one site: %q", one)
	}
	none := f.mustParse(t, `email = "ops@example.com"`).Summary()
	if !strings.HasSuffix(none, "\nno [[site]]: serve would serve no site and manage no certificate\n") || strings.Contains(none, "listen:") {
		t.Errorf("no site: %q (and no listen line: serve would not listen)", none)
	}
}
