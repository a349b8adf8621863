package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAgentConfig: the agent config of issue 13 (issuer, issuer_ca,
// storage, [[certificate]] with the deploy keys of certs) is read with
// paths resolved, and every mistake is reported at its file:line: key.
func TestAgentConfig(t *testing.T) {
	f := newFixture(t)
	parse := func(text string) (*Agent, error) {
		return ParseAgent(filepath.Join(f.dir, "agent.toml"), []byte(strings.ReplaceAll(text, "$DIR", f.dir)))
	}
	a, err := parse(`issuer = "https://issuer.example.com:8443"
issuer_ca = "ca.pem"
storage = "agent-storage"
[[certificate]]
names = ["db1.example.com", "*.db1.example.com"]
fullchain = "$DIR/www/fullchain.pem"
privkey = "$DIR/www/privkey.pem"
reload = ["systemctl", "reload", "postgresql"]
reuse_key = true
`)
	if err != nil {
		t.Fatal(err)
	}
	if a.Issuer != "https://issuer.example.com:8443" || a.IssuerCA != filepath.Join(f.dir, "ca.pem") || a.Storage != filepath.Join(f.dir, "agent-storage") {
		t.Errorf("agent %+v", a)
	}
	if a.WarnWindow.Fraction != 0.1 || a.WarnWindow.Duration != 0 {
		t.Errorf("default warn_window %+v, want 10%%", a.WarnWindow)
	}
	if w, err := parse("warn_window = \"3d\"\nissuer = \"https://issuer.example.com\"\nissuer_ca = \"ca.pem\"\nstorage = \"s\"\n"); err != nil || w.WarnWindow.Duration != 72*time.Hour {
		t.Errorf("warn_window = \"3d\": %+v, %v", w, err)
	}
	if len(a.Certificates) != 1 || !slices.Equal(a.Certificates[0].Names, []string{"db1.example.com", "*.db1.example.com"}) ||
		!a.Certificates[0].ReuseKey || len(a.Certificates[0].Reload) != 3 || a.Certificates[0].KeyTypes[0] != DefaultKeyType {
		t.Errorf("certificate %+v", a.Certificates)
	}
	const base = "issuer = \"https://issuer.example.com\"\nissuer_ca = \"ca.pem\"\nstorage = \"s\"\n"
	for _, tc := range []struct{ name, config, want string }{
		{"nothing", ``, `agent.toml: issuer: required`},
		{"no CA", `issuer = "https://issuer.example.com"`, `agent.toml: issuer_ca: required`},
		{"http issuer", "issuer = \"http://issuer.example.com\"\nissuer_ca = \"ca.pem\"\nstorage = \"s\"", `agent.toml:1: issuer: "http://issuer.example.com": want an https:// URL`},
		{"CA missing", "issuer = \"https://i.example.com\"\nissuer_ca = \"nope.pem\"\nstorage = \"s\"", `agent.toml:2: issuer_ca:`},
		{"database", "issuer = \"https://i.example.com\"\nissuer_ca = \"ca.pem\"\nstorage = \"postgres://db/x\"", `agent.toml:3: storage: an agent keeps its keys in a directory`},
		{"IP name", base + "[[certificate]]\nnames = \"192.0.2.1\"\nfullchain = \"$DIR/www/f.pem\"\nprivkey = \"$DIR/www/k.pem\"", `agent.toml:5: certificate[1].names: 192.0.2.1: an IP address cannot be proved with dns-01`},
		{"no file", base + "[[certificate]]\nnames = \"db1.example.com\"", `certificate[1]: a certificate needs somewhere to go`},
		{"site table", base + "[[site]]\nnames = \"db1.example.com\"", `agent.toml:4: site: unknown key`},
		{"bad warn_window", base + "warn_window = \"soon\"", `agent.toml:4: warn_window:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
