package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestBadConfigs checks that each bad config is rejected with a message
// naming the file, the line and the key path.
func TestBadConfigs(t *testing.T) {
	f := newFixture(t)
	f.write(t, "loose.secret", "c2VjcmV0Cg==\n", 0o644)
	f.write(t, "other.pem", must(selfSigned(t, "other.example")), 0o644)
	tests := []struct {
		name, config, want string
	}{
		{"unknown site key", `[[site]]
names = ["a.example"]
[[site]]
names = ["b.example"]
roots = "$DIR/www"
`, `tlspilot.toml:5: site[2].roots: unknown key (did you mean "root"?)`},
		{"unknown top-level key", `emial = "ops@example.com"`,
			`tlspilot.toml:1: emial: unknown key (did you mean "email"?)`},
		{"top-level key after a site", `[[site]]
names = ["a.example"]
root = "$DIR/www"
admin_listen = "127.0.0.1:2019"`, `tlspilot.toml:4: site[1].admin_listen: unknown key here; admin_listen is a top-level key: move it above the first [table] or [[table]] header`},
		{"top-level key after dns", `[dns]
provider = "exec"
command = "/bin/true"
log_level = "debug"`, `tlspilot.toml:4: dns.log_level: unknown key here; log_level is a top-level key: move it above the first [table] or [[table]] header`},
		{"unknown key far from any", `[[site]]
names = ["a.example"]
colour = "blue"`, `tlspilot.toml:3: site[1].colour: unknown key`},
		{"unknown route key", `[[site]]
names = ["a.example"]
root = "$DIR/www"
[[site.route]]
path = "/a/"
root = "$DIR/www"
[[site.route]]
path = "/b/"
proxyy = "http://127.0.0.1:8080"
`, `tlspilot.toml:9: site[1].route[2].proxyy: unknown key (did you mean "proxy"?)`},
		{"unknown key in inline site", `site = [
  {names = ["a.example"], root = "$DIR/www"},
  {names = ["b.example"],
   rot = "$DIR/www"},
]`, `tlspilot.toml:4: site[2].rot: unknown key (did you mean "root"?)`},
		{"unknown dns key", `[dns]
provider = "exec"
command = "/bin/true"
servr = "x"`, `tlspilot.toml:4: dns.servr: unknown key (did you mean "server"?)`},
		{"wrong type", `http_listen = 80`, `tlspilot.toml:1: http_listen: want a string, not an integer`},
		{"wrong type in list", `[[site]]
names = ["a.example",
  42]`, `tlspilot.toml:3: site[1].names[2]: want a string, not an integer`},
		{"wrong type bool", `agree_terms = "yes"`, `tlspilot.toml:1: agree_terms: want true or false, not a string`},
		{"site not a table", `site = "a.example"`, `tlspilot.toml:1: site: want [[site]] tables, not a string`},
		{"toml syntax", "email = \"a@b.example\"\nemail = \"c@d.example\"\n", `tlspilot.toml:2: email: toml: key email is already defined`},
		{"ca not https", `ca = "http://ca.example/dir"`, `tlspilot.toml:1: ca: "http://ca.example/dir": want an https:// ACME directory URL`},
		{"ca_root not PEM", `ca_root = ["$DIR/ca.pem", "$DIR/www/../tsig.secret"]`, `tlspilot.toml:1: ca_root[2]: ` + f.dir + `/tsig.secret holds no PEM certificate`},
		{"bad email", `email = "ops at example.com"`, `tlspilot.toml:1: email: "ops at example.com" is not an email address`},
		{"bad listen", `
https_listen = "443"`, `tlspilot.toml:2: https_listen: "443": want host:port`},
		{"bad listen port", `http_listen = ":http"`, `tlspilot.toml:1: http_listen: ":http": port "http" is not a number`},
		{"proxy scheme", `[[site]]
names = ["a.example"]
proxy = "ftp://127.0.0.1:21"`, `tlspilot.toml:3: site[1].proxy: "ftp://127.0.0.1:21": want an http:// or https:// upstream URL`},
		{"proxy without host", `[[site]]
names = ["a.example"]
proxy = [
  "http://127.0.0.1:8080",
  "http:///path",
]`, `tlspilot.toml:5: site[1].proxy[2]: "http:///path": the upstream URL has no host`},
		{"redirect relative", `[[site]]
names = ["a.example"]
redirect = "/elsewhere{uri}"`, `tlspilot.toml:3: site[1].redirect: "/elsewhere{uri}": want an absolute http:// or https:// URL`},
		{"redirect placeholder", `[[site]]
names = ["a.example"]
redirect = "https://{host}{uri}"`, `tlspilot.toml:3: site[1].redirect: "https://{host}{uri}": the only placeholder is {uri}`},
		{"bad name", `[[site]]
names = ["a.example", "exa mple.com"]`, `tlspilot.toml:2: site[1].names[2]: invalid name: "exa mple.com"`},
		{"single-label name", `[[site]]
names = "localhost"`, `tlspilot.toml:2: site[1].names: invalid name: "localhost": not a fully qualified name`},
		{"name twice in a site", `[[site]]
names = ["a.example", "A.Example."]`, `tlspilot.toml:2: site[1].names[2]: "a.example" is listed twice`},
		{"name claimed by two sites", `[[site]]
names = ["a.example"]

[[site]]
names = ["b.example",
         "A.EXAMPLE"]`, `tlspilot.toml:6: site[2].names[2]: a.example is already a name of site[1] (line 1)`},
		{"site without names", `[[site]]
root = "$DIR/www"`, `tlspilot.toml:1: site[1].names: required`},
		{"site with empty names", `[[site]]
names = []`, `tlspilot.toml:2: site[1].names: at least one name is needed`},
		{"root and proxy", `[[site]]
names = ["a.example"]
root = "$DIR/www"
proxy = "http://127.0.0.1:8080"`, `tlspilot.toml:4: site[1].proxy: root and proxy are exclusive`},
		{"proxy_ca without proxy", `[[site]]
names = ["a.example"]
root = "$DIR/www"
proxy_ca = "ca.pem"`, `tlspilot.toml:4: site[1].proxy_ca: goes with proxy`},
		{"proxy_server_name with http upstreams only", `[[site]]
names = ["a.example"]
[[site.route]]
path = "/api/"
proxy = ["http://127.0.0.1:8080"]
proxy_server_name = "api.internal"`, `tlspilot.toml:6: site[1].route[1].proxy_server_name: applies to https:// upstreams, and every upstream of this proxy is http://`},
		{"proxy_ca not PEM", `[[site]]
names = ["a.example"]
proxy = "https://10.0.0.5:8443"
proxy_ca = "loose.secret"`, `tlspilot.toml:4: site[1].proxy_ca: ` + f.dir + `/loose.secret holds no PEM certificate`},
		{"proxy_server_name an address", `[[site]]
names = ["a.example"]
proxy = "https://10.0.0.5:8443"
proxy_server_name = "10.0.0.5"`, `tlspilot.toml:4: site[1].proxy_server_name: "10.0.0.5": a host name`},
		{"root missing", `[[site]]
names = ["a.example"]
root = "www/nope"`, `tlspilot.toml:3: site[1].root: ` + f.dir + `/www/nope does not exist`},
		{"root is a file", `[[site]]
names = ["a.example"]
root = "ca.pem"`, `tlspilot.toml:3: site[1].root: ` + f.dir + `/ca.pem is not a directory`},
		{"cert_file without key_file", `[[site]]
names = ["example.com"]
cert_file = "$DIR/site.pem"`, `tlspilot.toml:1: site[1].key_file: cert_file and key_file go together`},
		{"cert_file with challenge", `[[site]]
names = ["example.com"]
cert_file = "$DIR/site.pem"
key_file = "$DIR/site.key"
challenge = "tls-alpn-01"`, `tlspilot.toml:5: site[1].challenge: not used with cert_file`},
		{"cert_file not covering", `[[site]]
names = ["example.com", "api.example.com"]
cert_file = "$DIR/site.pem"
key_file = "$DIR/site.key"`, `tlspilot.toml:3: site[1].cert_file: ` + f.dir + `/site.pem does not cover api.example.com`},
		{"cert_file and key mismatch", `[[site]]
names = ["example.com"]
cert_file = "$DIR/other.pem"
key_file = "$DIR/site.key"`, `tlspilot.toml:3: site[1].cert_file: ` + f.dir + `/other.pem, ` + f.dir + `/site.key: tls: private key does not match public key`},
		{"route path", `[[site]]
names = ["a.example"]
[[site.route]]
path = "api/"
proxy = "http://127.0.0.1:8080"`, `tlspilot.toml:4: site[1].route[1].path: "api/": a path starts with "/"`},
		{"route twice", `[[site]]
names = ["a.example"]
[[site.route]]
path = "/api/"
proxy = "http://127.0.0.1:8080"
[[site.route]]
path = "/api/"
root = "$DIR/www"`, `tlspilot.toml:7: site[1].route[2].path: "/api/": already the path of the route at line 3`},
		{"route serving nothing", `[[site]]
names = ["a.example"]

[[site.route]]
path = "/api/"`, `tlspilot.toml:4: site[1].route[1]: a route needs one of root, proxy or redirect`},
		{"wildcard with http-01", `[[site]]
names = ["*.example.com"]`, `tlspilot.toml:2: site[1].names[1]: *.example.com: a wildcard name needs challenge = "dns-01" (this site uses http-01)`},
		{"unknown challenge", `challenge = "http-02"`, `tlspilot.toml:1: challenge: unknown challenge "http-02"`},
		{"unknown site challenge", `[[site]]
names = ["a.example"]
challenge = "dns-02"`, `tlspilot.toml:3: site[1].challenge: unknown challenge "dns-02"`},
		{"dns-01 without dns", `challenge = "dns-01"`, `tlspilot.toml:1: challenge: dns-01 needs a [dns] table`},
		{"unknown key type", `key_type = ["ecdsa-p256", "ed25519"]`, `tlspilot.toml:1: key_type[2]: unknown key type "ed25519"`},
		{"key type twice", `key_type = ["rsa2048", "RSA2048"]`, `tlspilot.toml:1: key_type[2]: rsa2048 is listed twice`},
		{"no key type", `key_type = []`, `tlspilot.toml:1: key_type: at least one key type is needed`},
		{"two default sites", `[[site]]
names = ["a.example"]
default = true
[[site]]
names = ["b.example"]
default = true`, `tlspilot.toml:6: site[2].default: site[1] is already the default site (line 1)`},
		{"bad header", `[[site]]
names = ["a.example"]
[site.headers]
"X Frame" = "DENY"`, `tlspilot.toml:4: site[1].headers."X Frame": not a valid header name`},
		{"bad duration", `[dns]
provider = "exec"
command = "/bin/true"
timeout = "5 minutes"`, `tlspilot.toml:4: dns.timeout: "5 minutes": want a positive duration such as "60s" or "5m"`},
		{"negative duration", `[dns]
provider = "exec"
command = "/bin/true"
propagation_timeout = "-5m"`, `tlspilot.toml:4: dns.propagation_timeout: "-5m": want a positive duration`},
		{"duration as number", `[dns]
provider = "exec"
command = "/bin/true"
timeout = 60`, `tlspilot.toml:4: dns.timeout: want a string, not an integer`},
		{"unknown provider", `[dns]
provider = "route53"`, `tlspilot.toml:2: dns.provider: unknown provider "route53" (want rfc2136 or exec)`},
		{"no provider", `[dns]
zone = "example.com"`, `tlspilot.toml:1: dns.provider: required`},
		{"rfc2136 missing key", `[dns]
provider = "rfc2136"
server = "127.0.0.1:5353"
tsig_secret_file = "tsig.secret"`, `tlspilot.toml:1: dns.tsig_key: required by the rfc2136 provider`},
		{"rfc2136 with command", `[dns]
provider = "rfc2136"
server = "127.0.0.1:5353"
tsig_key = "tlspilot."
tsig_secret_file = "tsig.secret"
command = "/bin/true"`, `tlspilot.toml:6: dns.command: not used by the rfc2136 provider`},
		{"tsig algorithm", `[dns]
provider = "rfc2136"
server = "127.0.0.1:5353"
tsig_key = "tlspilot."
tsig_algorithm = "hmac-md5"
tsig_secret_file = "tsig.secret"`, `tlspilot.toml:5: dns.tsig_algorithm: "hmac-md5": want hmac-sha256 or hmac-sha512`},
		{"tsig secret readable by others", `[dns]
provider = "rfc2136"
server = "127.0.0.1:5353"
tsig_key = "tlspilot."
tsig_secret_file = "loose.secret"`, `tlspilot.toml:5: dns.tsig_secret_file: ` + f.dir + `/loose.secret is readable by group or others`},
		{"exec without command", `[dns]
provider = "exec"`, `tlspilot.toml:1: dns.command: required by the exec provider`},
		{"bad resolver", `[dns]
provider = "exec"
command = "/bin/true"
resolvers = ["127.0.0.1:53", "127.0.0.1:99999"]`, `tlspilot.toml:4: dns.resolvers[2]: "127.0.0.1:99999": want host:port`},
		{"bad authoritative port", `[dns]
provider = "exec"
command = "/bin/true"
authoritative_port = 0`, `tlspilot.toml:4: dns.authoritative_port: 0: want a port from 1 to 65535`},
		{"dns zone", `[dns]
provider = "exec"
command = "/bin/true"
zone = "*.example.com"`, `tlspilot.toml:4: dns.zone: "*.example.com" is not a zone name`},
		{"eab half", `eab_key_id = "kid-1"`, `tlspilot.toml:1: eab_key_id: eab_key_id and eab_hmac_file go together`},
		{"unknown user", `user = "no-such-user-tlspilot"`, `tlspilot.toml:1: user: "no-such-user-tlspilot": no such user`},
		{"storage is a file", `storage = "ca.pem"`, `tlspilot.toml:1: storage: ` + f.dir + `/ca.pem is not a directory`},
		{"access_log directory missing", `access_log = "logs/access.log"`, `tlspilot.toml:1: access_log: logs/access.log: directory ` + f.dir + `/logs does not exist`},
		{"eab file missing", `eab_key_id = "kid"
eab_hmac_file = "nope.key"`, `tlspilot.toml:2: eab_hmac_file: ` + f.dir + `/nope.key does not exist`},
		{"upstream with query", `[[site]]
names = ["a.example"]
proxy = "http://127.0.0.1:8080/?a=b"`, `tlspilot.toml:3: site[1].proxy: "http://127.0.0.1:8080/?a=b": an upstream URL has no user, query or fragment`},
		{"empty proxy list", `[[site]]
names = ["a.example"]
proxy = []`, `tlspilot.toml:3: site[1].proxy: at least one upstream is needed`},
		{"unknown group", `group = "no-such-group-tlspilot"`, `tlspilot.toml:1: group: "no-such-group-tlspilot": no such group`},
		{"unknown uid", `user = "4294967000"`, `tlspilot.toml:1: user: "4294967000": no such user`},
		{"bad header value", `[[site]]
names = ["a.example"]
headers = {X-A = "ok", X-B = "two\nlines"}`, `tlspilot.toml:3: site[1].headers.X-B: not a valid header value`},
		{"header not a string", `[[site]]
names = ["a.example"]
[site.headers]
X-Count = 3`, `tlspilot.toml:4: site[1].headers.X-Count: want a string, not an integer`},
		{"headers not a table", `[[site]]
names = ["a.example"]
headers = "X-A: b"`, `tlspilot.toml:3: site[1].headers: want a table, not a string`},
		{"float port", `[dns]
provider = "exec"
command = "x"
authoritative_port = 53.0`, `tlspilot.toml:4: dns.authoritative_port: want an integer, not a float`},
		{"date as string", `email = 2026-01-01`, `tlspilot.toml:1: email: want a string, not a date or time`},
		{"list of sites not tables", `site = ["a.example"]`, `tlspilot.toml:1: site[1]: want a table, not a string`},
		{"ip with dns-01", `[dns]
provider = "exec"
command = "x"
[[site]]
names = ["192.0.2.1"]
challenge = "dns-01"`, `tlspilot.toml:5: site[1].names[1]: 192.0.2.1: an IP address cannot be proved with dns-01`},
		{"site dns-01 without dns", `[[site]]
names = ["a.example"]
challenge = "dns-01"`, `tlspilot.toml:3: site[1].challenge: dns-01 needs a [dns] table`},
		{"bad csp", `[[site]]
names = ["a.example"]
csp = ""`, `tlspilot.toml:3: site[1].csp: not a valid header value`},
		{"route without path", `[[site]]
names = ["a.example"]
[[site.route]]
root = "www"`, `tlspilot.toml:3: site[1].route[1].path: required`},
		{"quoted unknown key", `"odd key" = 1`, `tlspilot.toml:1: "odd key": unknown key`},
		{"bad log level", `log_level = "verbose"`, `tlspilot.toml:1: log_level: "verbose": want debug, info, warn or error`},
		{"duplicate key in a table", `[dns]
provider = "exec"
command = "/bin/true"
command = "/bin/true"`, `tlspilot.toml:4: dns.command: toml: key command is already defined`},
		{"duplicate key in the second of an array of tables", `[[site]]
names = ["a.example"]
[[site]]
names = ["b.example"]
names = ["c.example"]`, `tlspilot.toml:5: site[2].names: toml: key names is already defined`},
		{"duplicate dotted key", `[dns]
x.y = 1
x.y = 2`, `tlspilot.toml:3: dns.x.y: toml: key y is already defined`},
		{"duplicate top-level key", `email = "a@example.com"
email = "b@example.com"`, `tlspilot.toml:2: email: toml: key email is already defined`},
		{"duplicate table", `[dns]
provider = "exec"
[dns]`, `tlspilot.toml:3: dns: toml: table dns already exists`},
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
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is %T, want a non-empty ErrorList", err)
			}
		})
	}
}

// TestEveryProblemReported checks that one pass reports every problem,
// ordered by line, each usable with errors.As.
func TestEveryProblemReported(t *testing.T) {
	f := newFixture(t)
	_, err := f.parse(t, `[[site]]
names = ["a.example"]
proxy = "ftp://x"
[[site]]
names = ["a.example"]
roots = "/"
emial = "x"
`)
	want := []string{
		"tlspilot.toml:3: site[1].proxy:",
		"tlspilot.toml:5: site[2].names[1]: a.example is already a name of site[1]",
		"tlspilot.toml:6: site[2].roots: unknown key",
		"tlspilot.toml:7: site[2].emial: unknown key",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("problem %d: %q, want it to contain %q", i+1, lines[i], w)
		}
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Key != "site[1].proxy" {
		t.Errorf("errors.As: %+v", e)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.toml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}
}

func must(cert, _ string) string { return cert }
