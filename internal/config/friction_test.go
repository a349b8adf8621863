package config

import (
	"strings"
	"testing"
)

// TestFriction: mistakes a new user makes are refused with a message that
// says what to write instead.
func TestFriction(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, config, want string
	}{
		{"proxy without port", "agree_terms = true\n[[site]]\nnames = [\"a.example\"]\nproxy = \"http://127.0.0.1:\"",
			`tlspilot.toml:4: site[1].proxy: "http://127.0.0.1:": the port is empty`},
		{"proxy port out of range", "agree_terms = true\n[[site]]\nnames = [\"a.example\"]\nproxy = \"http://127.0.0.1:70000\"",
			`tlspilot.toml:4: site[1].proxy: "http://127.0.0.1:70000": port 70000 is not from 1 to 65535`},
		{"URL as a name", "agree_terms = true\n[[site]]\nnames = [\"https://x.com\"]",
			`tlspilot.toml:3: site[1].names[1]: "https://x.com" is a URL: write a name, not a URL, such as "x.com"`},
		{"name with a path", "agree_terms = true\n[[site]]\nnames = [\"x.com/app\"]",
			`tlspilot.toml:3: site[1].names[1]: "x.com/app" is a name with a path: write a name, not a URL, such as "x.com"`},
		{"name with a port", "agree_terms = true\n[[site]]\nnames = [\"x.com:8443\"]",
			`tlspilot.toml:3: site[1].names[1]: "x.com:8443" is a name with a port: write the name alone, such as "x.com" (the port is https_listen's)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestCheckTerms: Let's Encrypt, the default CA, has terms that must be
// agreed to; other CAs are left to say so themselves.
func TestCheckTerms(t *testing.T) {
	f := newFixture(t)
	const site = "\n[[site]]\nnames = [\"a.example\"]\nredirect = \"https://example.org/\"\n"
	tests := []struct{ config, want string }{
		{`ca = "letsencrypt-staging"`, `tlspilot.toml:1: agree_terms: Let's Encrypt requires agreeing to its terms of service`},
		{`email = "ops@example.com"`, `tlspilot.toml: agree_terms: Let's Encrypt requires agreeing to its terms of service`},
		{"email = \"ops@example.com\"\nagree_terms = false\nca = \"letsencrypt\"", `tlspilot.toml:2: agree_terms: Let's Encrypt requires`},
		{"agree_terms = true", ""},
		{`ca = "https://ca.example/dir"`, ""},
	}
	for _, tt := range tests {
		c, err := f.parse(t, tt.config+site)
		if err != nil {
			t.Fatalf("%q: %v", tt.config, err)
		}
		err = c.CheckTerms()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.config, err, tt.want)
		}
	}
}

// TestCheckTermsNothingOrdered: a config that orders nothing from the CA
// (no sites, or every site with its own certificate files) need not agree
// to Let's Encrypt's terms.
func TestCheckTermsNothingOrdered(t *testing.T) {
	f := newFixture(t)
	c, err := f.parse(t, `ca = "letsencrypt"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckTerms(); err != nil {
		t.Errorf("no site: %v", err)
	}
}

// TestCAShorthands: "letsencrypt" and "letsencrypt-staging" stand for
// Let's Encrypt's directory URLs.
func TestCAShorthands(t *testing.T) {
	f := newFixture(t)
	for short, want := range map[string]string{
		"letsencrypt":         "https://acme-v02.api.letsencrypt.org/directory",
		"letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
	} {
		c, err := f.parse(t, "agree_terms = true\nca = \""+short+"\"\n")
		if err != nil {
			t.Fatal(err)
		}
		if c.CA != want {
			t.Errorf("ca = %q: %q, want %q", short, c.CA, want)
		}
	}
}

// TestLogging: log_format and log_file.
func TestLogging(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, "log_format = \"json\"\nlog_file = \"logs/../tlspilot.log\"\n")
	if c.LogFormat != "json" || c.LogFile != f.dir+"/tlspilot.log" {
		t.Errorf("log_format %q, log_file %q", c.LogFormat, c.LogFile)
	}
	for conf, want := range map[string]string{
		`log_format = "xml"`:       `tlspilot.toml:1: log_format: "xml": want text or json`,
		`log_file = "off"`:         `tlspilot.toml:1: log_file: the log cannot be turned off`,
		`log_file = "/nope/x.log"`: `tlspilot.toml:1: log_file: /nope/x.log: directory /nope does not exist`,
	} {
		if _, err := f.parse(t, conf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s", conf, err, want)
		}
	}
}

// TestPublicCAWarnings: with Let's Encrypt, check (and serve, in its log)
// names every site or [[certificate]] name the CA will refuse: reserved
// top-level domains and IP addresses that are not public; with a CA of
// one's own, nothing.
func TestPublicCAWarnings(t *testing.T) {
	f := newFixture(t)
	text := `ca = "letsencrypt-staging"
agree_terms = true

[[site]]
names = ["www.example.com", "app.test", "8.8.8.8", "10.1.2.3", "printer.home.arpa"]

[[site]]
names = ["db.internal", "Nas.Local.", "100.64.1.1", "fe80::1"]
`
	c := f.mustParse(t, text)
	got := strings.Join(c.PublicCAWarnings(), "\n")
	for _, want := range []string{
		":5: site[1].names: app.test: Let's Encrypt does not issue for names under .test",
		":5: site[1].names: 10.1.2.3: Let's Encrypt does not issue for an IP address that is not public",
		":5: site[1].names: printer.home.arpa: Let's Encrypt does not issue for names under home.arpa",
		":8: site[2].names: db.internal: Let's Encrypt does not issue for names under .internal",
		":8: site[2].names: nas.local: Let's Encrypt does not issue for names under .local",
		":8: site[2].names: 100.64.1.1: Let's Encrypt does not issue for an IP address that is not public",
		":8: site[2].names: fe80::1: Let's Encrypt does not issue for an IP address that is not public",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if n := len(c.PublicCAWarnings()); n != 7 {
		t.Errorf("%d warnings, want 7 (www.example.com and 8.8.8.8 are fine):\n%s", n, got)
	}
	own := f.mustParse(t, strings.Replace(text, `ca = "letsencrypt-staging"`, `ca = "https://ca.internal.example/dir"`, 1))
	if w := own.PublicCAWarnings(); w != nil {
		t.Errorf("with a CA of one's own: %q, want none", w)
	}
}
