package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCertificateTable: every key of [[certificate]] is read, with its
// defaults and paths resolved against the config's directory.
func TestCertificateTable(t *testing.T) {
	f := newFixture(t)
	for _, d := range []string{"live", "challenges"} {
		if err := os.Mkdir(filepath.Join(f.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := f.mustParse(t, `key_type = "rsa2048"
[[site]]
names = ["www.example.com"]
[[certificate]]
names = ["Mail.Example.com", "imap.example.com"]
key_type = "ecdsa-p256"
challenge = "http-01"
challenge_dir = "challenges"
fullchain = "live/fullchain.pem"
privkey = "$DIR/live/privkey.pem"
cert = "live/cert.pem"
chain = "live/chain.pem"
combined = "live/combined.pem"
owner = "root"
group = "0"
mode = "0640"
reload = ["systemctl", "reload", "postfix"]
[[certificate]]
names = "smtp.example.com"
challenge = "tls-alpn-01"
standalone = "127.0.0.1:8443"
combined = "live/smtp.pem"
reload_signal = "sighup"
pidfile = "/run/haproxy.pid"
`)
	if len(c.Certificates) != 2 {
		t.Fatalf("%d certificates, want 2", len(c.Certificates))
	}
	a, b := c.Certificates[0], c.Certificates[1]
	live := filepath.Join(f.dir, "live")
	if !slices.Equal(a.Names, []string{"mail.example.com", "imap.example.com"}) || !slices.Equal(a.KeyTypes, []string{"ecdsa-p256"}) ||
		a.Challenge != "http-01" || a.ChallengeDir != filepath.Join(f.dir, "challenges") || a.Line != 4 ||
		a.Fullchain != live+"/fullchain.pem" || a.Privkey != live+"/privkey.pem" || a.Cert != live+"/cert.pem" ||
		a.Chain != live+"/chain.pem" || a.Combined != live+"/combined.pem" || a.Owner != "root" || a.Group != "0" ||
		a.Mode != 0o640 || !slices.Equal(a.Reload, []string{"systemctl", "reload", "postfix"}) {
		t.Errorf("first certificate: %+v", a)
	}
	if !slices.Equal(b.KeyTypes, []string{"rsa2048"}) || b.Standalone != "127.0.0.1:8443" || b.ReloadSignal != "HUP" ||
		b.PIDFile != "/run/haproxy.pid" || b.Mode != 0 || b.Combined != live+"/smtp.pem" {
		t.Errorf("second certificate: %+v", b)
	}
	if s := c.Summary(); !strings.Contains(s, "certificate[1] line 4: mail.example.com, imap.example.com (http-01, ecdsa-p256) for tlspilot certs\n") {
		t.Errorf("summary:\n%s", s)
	}
}

// TestBadCertificates: each mistake in a [[certificate]] is reported at
// file:line:key.
func TestBadCertificates(t *testing.T) {
	f := newFixture(t)
	if err := os.Mkdir(filepath.Join(f.dir, "live"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, config, want string }{
		{"no names", `[[certificate]]
fullchain = "live/f.pem"
privkey = "live/k.pem"`, `tlspilot.toml:1: certificate[1].names: required: the names this certificate covers`},
		{"name of a site", `[[site]]
names = ["a.example"]
[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"`, `tlspilot.toml:4: certificate[1].names[1]: a.example is already a name of site[1] (line 1)`},
		{"nowhere to go", `[[certificate]]
names = ["a.example"]`, `tlspilot.toml:1: certificate[1]: a certificate needs somewhere to go`},
		{"fullchain without key", `[[certificate]]
names = ["a.example"]
fullchain = "live/f.pem"`, `tlspilot.toml:3: certificate[1].fullchain: privkey is needed too`},
		{"directory missing", `[[certificate]]
names = ["a.example"]
privkey = "nope/k.pem"`, `tlspilot.toml:3: certificate[1].privkey: directory ` + f.dir + `/nope does not exist`},
		{"same file twice", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
[[certificate]]
names = ["b.example"]
combined = "live/k.pem"`, `tlspilot.toml:6: certificate[2].combined: ` + f.dir + `/live/k.pem is already written by certificate[1].privkey (line 3)`},
		{"mode for others", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
mode = "0644"`, `tlspilot.toml:4: certificate[1].mode: "0644": the private key must not be readable or writable by others`},
		{"mode not octal", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
mode = "rw-r-----"`, `tlspilot.toml:4: certificate[1].mode: "rw-r-----": want an octal mode such as "0640"`},
		{"mode as number", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
mode = 416`, `tlspilot.toml:4: certificate[1].mode: want a string, not an integer`},
		{"signal without pidfile", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
reload_signal = "HUP"`, `tlspilot.toml:1: certificate[1].pidfile: reload_signal and pidfile go together`},
		{"reload and signal", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
reload = ["nginx", "-s", "reload"]
reload_signal = "HUP"
pidfile = "/run/nginx.pid"`, `tlspilot.toml:5: certificate[1].reload_signal: reload and reload_signal are exclusive`},
		{"unknown signal", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
reload_signal = "KILL"
pidfile = "/run/nginx.pid"`, `tlspilot.toml:4: certificate[1].reload_signal: unknown signal "KILL"`},
		{"reload as a shell line", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
reload = "systemctl reload postfix"`, `tlspilot.toml:4: certificate[1].reload: "systemctl reload postfix" is run as one program name, with no shell to split it: write the program and its arguments as a list, ["systemctl", "reload", "postfix"]`},
		{"empty reload", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
reload = []`, `tlspilot.toml:4: certificate[1].reload: want a command and its arguments`},
		{"challenge_dir with dns-01", `[dns]
provider = "exec"
command = "/bin/true"
[[certificate]]
names = ["a.example"]
challenge = "dns-01"
challenge_dir = "live"
privkey = "live/k.pem"`, `tlspilot.toml:7: certificate[1].challenge_dir: only for http-01 (this certificate uses dns-01)`},
		{"challenge_dir missing", `[[certificate]]
names = ["a.example"]
challenge_dir = "acme"
privkey = "live/k.pem"`, `tlspilot.toml:3: certificate[1].challenge_dir: ` + f.dir + `/acme does not exist`},
		{"standalone and challenge_dir", `[[certificate]]
names = ["a.example"]
challenge_dir = "live"
standalone = ":80"
privkey = "live/k.pem"`, `tlspilot.toml:4: certificate[1].standalone: challenge_dir and standalone are exclusive`},
		{"bad standalone", `[[certificate]]
names = ["a.example"]
standalone = "80"
privkey = "live/k.pem"`, `tlspilot.toml:3: certificate[1].standalone: "80": want host:port`},
		{"site key in a certificate", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
cert_file = "site.pem"`, `tlspilot.toml:4: certificate[1].cert_file: unknown key`},
		{"typo", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
fulchain = "live/f.pem"`, `tlspilot.toml:4: certificate[1].fulchain: unknown key (did you mean "fullchain"?)`},
		{"unknown owner", `[[certificate]]
names = ["a.example"]
privkey = "live/k.pem"
owner = "no-such-user-tlspilot"`, `tlspilot.toml:4: certificate[1].owner: "no-such-user-tlspilot": no such user`},
		{"wildcard over http-01", `[[certificate]]
names = ["*.a.example"]
privkey = "live/k.pem"`, `tlspilot.toml:2: certificate[1].names[1]: *.a.example: a wildcard name needs challenge = "dns-01"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.parse(t, tt.config)
			if err == nil {
				t.Fatalf("accepted, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// TestDeployPath: one key type keeps the path; several name the key type.
func TestDeployPath(t *testing.T) {
	if got := DeployPath("/l/privkey.pem", "rsa2048", 1); got != "/l/privkey.pem" {
		t.Errorf("one key type: %s", got)
	}
	if got := DeployPath("/l/privkey.pem", "rsa2048", 2); got != "/l/privkey.rsa2048.pem" {
		t.Errorf("two key types: %s", got)
	}
}
