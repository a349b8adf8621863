package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A careless operator's config, key by key: each case is refused with
// the file, the line and the key, or (the accepted ones) read as written.

// TestNumericIDsWrittenAsTheSystemDoes: a numeric user or group id is
// passed to the C library as a 32-bit number, so "4294967296" is root,
// as are "00", "+0" and "-0". check said OK and serve stayed root (user),
// certs chowned the key files to root (owner); each is refused now.
func TestNumericIDsWrittenAsTheSystemDoes(t *testing.T) {
	f := newFixture(t)
	cert := "[[certificate]]\nnames = [\"a.example\"]\ncombined = \"$DIR/a.pem\"\n"
	for _, id := range []string{"4294967296", "4294968296", "4294967295", "00", "+0", "-0", "-1", "01000"} {
		for _, c := range []struct{ text, want, kind string }{
			{`user = "` + id + `"`, "tlspilot.toml:1: user: ", "user"},
			{`group = "` + id + `"`, "tlspilot.toml:1: group: ", "group"},
			{cert + `owner = "` + id + `"`, "tlspilot.toml:4: certificate[1].owner: ", "user"},
			{cert + `group = "` + id + `"`, "tlspilot.toml:4: certificate[1].group: ", "group"},
		} {
			want := c.want + `"` + id + `": a numeric ` + c.kind + " id is written in decimal from 0 to 4294967294"
			parseWant(t, f, c.text, want)
		}
	}
	for _, text := range []string{`user = "0"`, `group = "0"`, `user = "root"`, cert + `owner = "0"` + "\ngroup = \"0\""} {
		f.mustParse(t, text)
	}
}

// TestAgentOwnerIDChecked: an agent's [[certificate]] owner is checked
// as certs' is.
func TestAgentOwnerIDChecked(t *testing.T) {
	f := newFixture(t)
	_, err := f.parseAgent(t, "[[certificate]]\nnames = [\"a.example\"]\ncombined = \"$DIR/a.pem\"\nowner = \"4294967296\"\n")
	want := `agent.toml:7: certificate[1].owner: "4294967296": a numeric user id`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestPathPrefixesMatchable: routes and require_paths are matched on the
// decoded, cleaned request path, literally. A prefix written another way
// matched nothing: a dead route, or require_paths = ["/admin/*"] that
// let every client without a certificate into /admin/.
func TestPathPrefixesMatchable(t *testing.T) {
	f := newFixture(t)
	route := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n[[site.route]]\nroot = \"$DIR/www\"\npath = "
	auth := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n[site.client_auth]\nca = \"$DIR/ca.pem\"\nmode = \"optional\"\nrequire_paths = "
	for _, b := range []struct{ path, want string }{
		{"/admin/*", "a path prefix is matched as written, with no wildcard"},
		{"/*", "a path prefix is matched as written, with no wildcard"},
		{"//admin/", `write it as "/admin/"`},
		{"/admin/./", `write it as "/admin/"`},
		{"/x/../admin", `write it as "/admin"`},
		{"/admin/.", `write it as "/admin"`},
		{"/%61dmin/", "write the path decoded"},
		{"/admin%2Fx", "write the path decoded"},
		{"/admin?x=1", "a path prefix has no query or fragment"},
		{"/admin#top", "a path prefix has no query or fragment"},
		{"admin/", `a path starts with "/"`},
	} {
		parseWant(t, f, route+`"`+b.path+`"`, `tlspilot.toml:6: site[1].route[1].path: "`+b.path+`": `+b.want)
		parseWant(t, f, auth+`["/ok/", "`+b.path+`"]`, `tlspilot.toml:7: site[1].client_auth.require_paths[2]: "`+b.path+`": `+b.want)
	}
	for _, p := range []string{"/", "/admin", "/admin/", "/100%/", "/a.b/c-d_e~/"} {
		f.mustParse(t, route+`"`+p+`"`)
		f.mustParse(t, auth+`["`+p+`"]`)
	}
}

// TestRoutePathsMatchingTheSameRequests: "/a" and "/a/" match the same
// requests (a segment-boundary match), so the shorter route never served.
func TestRoutePathsMatchingTheSameRequests(t *testing.T) {
	f := newFixture(t)
	parseWant(t, f, `[[site]]
names = ["a.example"]
[[site.route]]
path = "/a/"
root = "$DIR/www"
[[site.route]]
path = "/a"
root = "$DIR/www"`, `tlspilot.toml:7: site[1].route[2].path: "/a": already the path of the route at line 3 ("/a/")`)
}

// TestHeaderNamesOnce: header names are not case-sensitive; the server
// kept one of two spellings and dropped the other silently, and a
// Content-Security-Policy header silently replaced csp.
func TestHeaderNamesOnce(t *testing.T) {
	f := newFixture(t)
	site := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	parseWant(t, f, site+"[site.headers]\nX-Frame-Options = \"DENY\"\nx-frame-options = \"SAMEORIGIN\"",
		`tlspilot.toml:6: site[1].headers.x-frame-options: the same header as X-Frame-Options (line 5)`)
	parseWant(t, f, site+"csp = \"default-src 'self'\"\n[site.headers]\ncontent-security-policy = \"default-src *\"",
		`tlspilot.toml:6: site[1].headers.content-security-policy: the same header as csp (line 4)`)
	c := f.mustParse(t, site+"[site.headers]\nX-Frame-Options = \"DENY\"\nX-Other = \"\"")
	if len(c.Sites[0].Headers) != 2 {
		t.Errorf("headers %v, want both", c.Sites[0].Headers)
	}
}

// TestArrayOfTablesAsAWholeHasALine: an error about an array of tables
// as a whole ([[dns]] for [dns], [[site]] in an agent's file) named no
// line.
func TestArrayOfTablesAsAWholeHasALine(t *testing.T) {
	f := newFixture(t)
	parseWant(t, f, "email = \"a@example.com\"\n[[dns]]\nprovider = \"exec\"", "tlspilot.toml:2: dns: want a table, not a list")
	parseWant(t, f, "[[admin]]\nlisten = \"127.0.0.1:1\"", "tlspilot.toml:1: admin: unknown key")
	_, err := f.parseAgent(t, "[[site]]\nnames = [\"a.example\"]\n")
	if want := "agent.toml:4: site: unknown key"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want %q", err, want)
	}
}

// TestByteOrderMark: a file saved with a UTF-8 byte order mark (Windows
// editors) was refused as "invalid character at start of key: U+00EF";
// it is read as the same file without it, lines unchanged.
func TestByteOrderMark(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, "\ufeffemail = \"ops@example.com\"\n")
	if c.Email != "ops@example.com" {
		t.Errorf("email %q", c.Email)
	}
	parseWant(t, f, "\ufeff\nemial = \"x\"", `tlspilot.toml:2: emial: unknown key (did you mean "email"?)`)
	p := f.write(t, "agent.toml", "\ufeff"+f.agentHead(), 0o644)
	if !IsAgentFile(p) {
		t.Error("IsAgentFile: false for an agent's file with a byte order mark")
	}
	if _, err := f.parseAgent(t, "\ufeff"); err != nil {
		t.Errorf("ParseAgent: %v", err)
	}
}

// agentHead is the three required keys of an agent's file (lines 1-3).
func (f *fixture) agentHead() string {
	return "issuer = \"https://issuer.example.com\"\nissuer_ca = \"" + f.dir + "/ca.pem\"\nstorage = \"" + f.dir + "/agent\"\n"
}

// parseAgent parses the required keys then text (from line 4) as the
// agent's file agent.toml in the fixture directory; a text starting with
// a byte order mark has it put first.
func (f *fixture) parseAgent(t *testing.T, text string) (*Agent, error) {
	t.Helper()
	text = strings.ReplaceAll(text, "$DIR", f.dir)
	rest, bom := strings.CutPrefix(text, "\ufeff")
	data := f.agentHead() + rest
	if bom {
		data = "\ufeff" + data
	}
	return ParseAgent(filepath.Join(f.dir, "agent.toml"), []byte(data))
}

// TestLogPathsNotDirectories: log_file or access_log naming a directory
// passed check and stopped serve ("open …: is a directory"); STDERR in
// upper case was taken for a file named STDERR next to the config.
func TestLogPathsNotDirectories(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{"log_file", "access_log"} {
		parseWant(t, f, k+` = "www"`, "tlspilot.toml:1: "+k+": $DIR/www is a directory: want a file in it")
		parseWant(t, f, k+` = "$DIR/www/"`, "tlspilot.toml:1: "+k+": $DIR/www is a directory")
		parseWant(t, f, k+` = "ca.pem/x.log"`, "tlspilot.toml:1: "+k+": ca.pem/x.log: $DIR/ca.pem is not a directory")
		parseWant(t, f, k+` = "STDERR"`, `tlspilot.toml:1: `+k+`: "STDERR": write "stderr" in lower case`)
		parseWant(t, f, k+` = "Stdout"`, `tlspilot.toml:1: `+k+`: "Stdout": write "stdout" in lower case`)
		c := f.mustParse(t, k+` = "www/x.log"`)
		if got := map[string]string{"log_file": c.LogFile, "access_log": c.AccessLog}[k]; got != filepath.Join(f.dir, "www/x.log") {
			t.Errorf("%s: %q", k, got)
		}
	}
	f.mustParse(t, `access_log = "off"`)
	f.mustParse(t, `log_file = "/dev/null"`)
}

// TestAdminHostsNoWildcard: admin_hosts are matched whole, so
// "*.example.com" allowed no name at all.
func TestAdminHostsNoWildcard(t *testing.T) {
	f := newFixture(t)
	parseWant(t, f, `admin_hosts = ["status.example.com", "*.example.com"]`,
		`tlspilot.toml:1: admin_hosts[2]: "*.example.com": names are matched whole, with no wildcard`)
}

// TestListenerClashes: two listeners on one address passed check and
// stopped the command at start with "bind: address already in use".
func TestListenerClashes(t *testing.T) {
	f := newFixture(t)
	site := "\n[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	cert := "\n[[certificate]]\nnames = [\"c.example\"]\ncombined = \"$DIR/c.pem\"\n"
	for _, b := range []struct{ config, want string }{
		{"http_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.1:8080\"",
			`tlspilot.toml:2: https_listen: "127.0.0.1:8080": also the address of http_listen ("127.0.0.1:8080", line 1): tlspilot serve cannot listen on it twice`},
		{`admin_listen = "127.0.0.1:443"`, `tlspilot.toml:1: admin_listen: "127.0.0.1:443": also the address of https_listen (":443", the default)`},
		{"https_listen = \"[::]:8443\"\nhttp_listen = \"192.0.2.1:8443\"", `tlspilot.toml:2: http_listen: "192.0.2.1:8443": also the address of https_listen`},
		{"https_listen = \"0.0.0.0:8443\"\nhttp_listen = \"127.0.0.1:8443\"", `tlspilot.toml:2: http_listen: "127.0.0.1:8443": also the address of https_listen`},
		{`certs_admin_listen = "127.0.0.1:2019"` + site + cert,
			`tlspilot.toml:1: certs_admin_listen: "127.0.0.1:2019": also the address of admin_listen ("127.0.0.1:2019", the default): tlspilot certs and tlspilot serve, run from this file, cannot both listen on it`},
		{"issuer_listen = \":443\"\nissuer_names = [\"issuer.example.com\"]" + site, `tlspilot.toml:1: issuer_listen: ":443": also the address of https_listen`},
		{site + cert + `standalone = "0.0.0.0:80"`, `tlspilot.toml:9: certificate[1].standalone: "0.0.0.0:80": also the address of http_listen (":80", the default): tlspilot certs and tlspilot serve`},
		{"certs_admin_listen = \"127.0.0.1:8080\"" + cert + `standalone = "127.0.0.1:8080"`, `tlspilot.toml:5: certificate[1].standalone: "127.0.0.1:8080": also the address of certs_admin_listen ("127.0.0.1:8080", line 1): tlspilot certs cannot listen on it twice`},
	} {
		parseWant(t, f, b.config, b.want)
	}
	for _, ok := range []string{
		"http_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"" + site,
		"http_listen = \"127.0.0.1:8080\"\nhttps_listen = \"127.0.0.2:8080\"" + site,
		"https_listen = \"0.0.0.0:8443\"\nhttp_listen = \"[::1]:8443\"" + site,
		"issuer_listen = \":443\"\nissuer_names = [\"issuer.example.com\"]", // no [[site]]: no serve
		`certs_admin_listen = "127.0.0.1:2019"` + cert,                      // no [[site]]: no serve
		`admin_listen = "off"` + "\nhttps_listen = \"127.0.0.1:2019\"" + site,
		"http_listen = \"127.0.0.1:8080\"" + cert + `standalone = "127.0.0.1:8080"`,                                                                    // no [[site]]: no serve
		cert + "standalone = \"127.0.0.1:8080\"\n[[certificate]]\nnames = [\"d.example\"]\ncombined = \"$DIR/d.pem\"\nstandalone = \"127.0.0.1:8080\"", // both open only while validating: not refused
	} {
		f.mustParse(t, ok)
	}
}

// TestDeployPathsNotDirectories: a deploy file or pidfile naming a
// directory passed check; certs failed only once it had a certificate
// to put there. "dir/" was taken for a file named dir.
func TestDeployPathsNotDirectories(t *testing.T) {
	f := newFixture(t)
	head := "[[certificate]]\nnames = [\"a.example\"]\n"
	if err := os.Mkdir(filepath.Join(f.dir, "c.rsa2048.pem"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct{ text, want string }{
		{head + `combined = "www"`, "tlspilot.toml:3: certificate[1].combined: $DIR/www is a directory: name the file"},
		{head + `combined = "$DIR/www/"`, "tlspilot.toml:3: certificate[1].combined: $DIR/www/ is a directory: name the file"},
		{head + `combined = "new/"`, "tlspilot.toml:3: certificate[1].combined: $DIR/new/ is a directory: name the file"},
		{head + "fullchain = \"www\"\nprivkey = \"k.pem\"", "tlspilot.toml:3: certificate[1].fullchain: $DIR/www is a directory"},
		{head + "key_type = [\"ecdsa-p256\", \"rsa2048\"]\ncombined = \"c.pem\"", "tlspilot.toml:4: certificate[1].combined: $DIR/c.rsa2048.pem is a directory"},
		{head + "combined = \"c.pem\"\nreload_signal = \"HUP\"\npidfile = \"www\"", "tlspilot.toml:5: certificate[1].pidfile: $DIR/www is a directory"},
		{head + `combined = "ca.pem/c.pem"`, "tlspilot.toml:3: certificate[1].combined: $DIR/ca.pem is not a directory"},
	} {
		parseWant(t, f, b.text, b.want)
	}
}

// TestUnexpandedPathsHinted: "~/x" and "$HOME/x" are not expanded (only
// storage said so); every other path now says it too when it is missing.
func TestUnexpandedPathsHinted(t *testing.T) {
	f := newFixture(t)
	site := "[[site]]\nnames = [\"a.example\"]\n"
	tilde := "(~ is not expanded in the config: write the whole path"
	for _, b := range []struct{ text, want string }{
		{site + `root = "~/www"`, "tlspilot.toml:3: site[1].root: $DIR/~/www does not exist " + tilde},
		{site + "cert_file = \"~/site.pem\"\nkey_file = \"$DIR/site.key\"", "tlspilot.toml:3: site[1].cert_file: $DIR/~/site.pem does not exist " + tilde},
		{`ca_root = "~/ca.pem"`, "tlspilot.toml:1: ca_root: $DIR/~/ca.pem does not exist " + tilde},
		{`challenge_dir = "~/acme"`, "tlspilot.toml:1: challenge_dir: $DIR/~/acme does not exist " + tilde},
		{`log_file = "~/log/t.log"`, "tlspilot.toml:1: log_file: ~/log/t.log: directory $DIR/~/log does not exist " + tilde},
		{`access_log = "$LOGS/a.log"`, "tlspilot.toml:1: access_log: $LOGS/a.log: directory $DIR/$LOGS does not exist ($LOGS is not expanded in the config"},
		{"[[certificate]]\nnames = [\"a.example\"]\ncombined = \"~/c.pem\"", "tlspilot.toml:3: certificate[1].combined: directory $DIR/~ does not exist " + tilde},
		{"[dns]\nprovider = \"exec\"\ncommand = \"~/hook.sh\"", "tlspilot.toml:3: dns.command: $DIR/~/hook.sh does not exist " + tilde},
	} {
		parseWant(t, f, b.text, b.want)
	}
}

// TestEABKeyDecoded: the HMAC key is decoded when the config is read, as
// serve decodes it (EABKey): check passed an empty file or one that is
// no base64 at all, and the first account registration failed. A key in
// base64url with "=" padding (as Google hands them out) or in standard
// base64 is taken, and given to the client as base64url without padding,
// which alone acmez decodes. The key is never quoted.
func TestEABKeyDecoded(t *testing.T) {
	f := newFixture(t)
	for _, b := range []struct{ key, want string }{
		{"\n", "eab.bad is empty"},
		{"not base64 at all!\n", "does not hold a base64 (or base64url) HMAC key"},
	} {
		f.write(t, "eab.bad", b.key, 0o600)
		_, err := f.parse(t, "eab_key_id = \"kid\"\neab_hmac_file = \"eab.bad\"")
		want := "tlspilot.toml:2: eab_hmac_file: " + filepath.Join(f.dir, "eab.bad")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("key %q: %v, want %q and %q", b.key, err, want, b.want)
			continue
		}
		if k := strings.TrimSpace(b.key); k != "" && strings.Contains(err.Error(), k) {
			t.Errorf("key %q quoted: %v", b.key, err)
		}
	}
	for _, key := range []string{" a-b_cdef \n", "a-b_cdQ=\n", "a+b/cdef\n", "a+b/cdQ\n"} {
		f.write(t, "eab.ok", key, 0o600)
		f.mustParse(t, "eab_key_id = \"kid\"\neab_hmac_file = \"eab.ok\"")
	}
	for in, want := range map[string]string{" a-b_cdef \n": "a-b_cdef", "a-b_cdQ=": "a-b_cdQ", "a+b/cdef": "a-b_cdef", "a+b/cdQ": "a-b_cdQ"} {
		if got, err := EABKey([]byte(in)); err != nil || got != want {
			t.Errorf("EABKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestUnknownKeyHints: a key or table spelled in the wrong case, or a
// site's table written without "site.", got no hint.
func TestUnknownKeyHints(t *testing.T) {
	f := newFixture(t)
	site := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	for _, b := range []struct{ text, want string }{
		{"[DNS]\nprovider = \"exec\"", `tlspilot.toml:1: DNS: unknown key (did you mean "dns"?)`},
		{"AGREE_TERMS = true", `tlspilot.toml:1: AGREE_TERMS: unknown key (did you mean "agree_terms"?)`},
		{"[[Site]]\nnames = [\"a.example\"]", `tlspilot.toml:1: Site: unknown key (did you mean "site"?)`},
		{"Admin-Listen = \"off\"", `tlspilot.toml:1: Admin-Listen: unknown key (did you mean "admin_listen"?)`},
		{site + "[[route]]\npath = \"/a/\"\nroot = \"$DIR/www\"", "tlspilot.toml:4: route: unknown key here; route belongs to a site: write [[site.route]] after the [[site]] it is for"},
		{site + "[client_auth]\nca = \"$DIR/ca.pem\"", "tlspilot.toml:4: client_auth: unknown key here; client_auth belongs to a site: write [site.client_auth] after the [[site]] it is for"},
		{site + "[headers]\nX-A = \"b\"", "tlspilot.toml:4: headers: unknown key here; headers belongs to a site: write [site.headers] after the [[site]] it is for"},
	} {
		parseWant(t, f, b.text, b.want)
	}
}

// TestNULRefused: a NUL written as "\u0000" passed check in a user
// ("root\u0000x" is root to the C library), a deploy path or a reload
// argument, and failed, or did worse, only when used.
func TestNULRefused(t *testing.T) {
	f := newFixture(t)
	cert := "[[certificate]]\nnames = [\"a.example\"]\ncombined = \"$DIR/c.pem\"\n"
	want := "the value holds a NUL character (\\u0000)"
	for _, b := range []struct{ text, at string }{
		{`user = "root\u0000nobody"`, "tlspilot.toml:1: user: "},
		{`group = "root\u0000"`, "tlspilot.toml:1: group: "},
		{`storage = "postgres://u:secret\u0000@db/x"`, "tlspilot.toml:1: storage: "},
		{"[[certificate]]\nnames = [\"a.example\"]\ncombined = \"$DIR/c\\u0000.pem\"", "tlspilot.toml:3: certificate[1].combined: "},
		{cert + `reload = ["/bin/true", "a\u0000"]`, "tlspilot.toml:4: certificate[1].reload[2]: "},
		{cert + `owner = "root\u0000x"`, "tlspilot.toml:4: certificate[1].owner: "},
		{`key_type = "rsa2048\u0000"`, "tlspilot.toml:1: key_type: "},
		{"[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\\u0000x\"", "tlspilot.toml:3: site[1].root: "},
	} {
		parseWant(t, f, b.text, b.at+want)
	}
	if _, err := f.parse(t, `storage = "postgres://u:secret\u0000@db/x"`); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("storage URL quoted: %v", err)
	}
}

// TestUpstreamPathsAgree: upstreams of one proxy with different paths
// passed check, and serve refused to start ("all upstreams of one
// handler must have the same path", with no line or key).
func TestUpstreamPathsAgree(t *testing.T) {
	f := newFixture(t)
	site := "[[site]]\nnames = [\"a.example\"]\n"
	parseWant(t, f, site+`proxy = ["http://a:1/x/", "http://b:1/x/", "http://c:1/y/"]`,
		`tlspilot.toml:3: site[1].proxy[3]: "http://c:1/y/": its path "/y/" is not "/x/", the path of site[1].proxy[1]`)
	f.mustParse(t, site+"proxy = [\"http://a:1\",\n  \"http://b:1/\"]") // "" and "/" add nothing alike
	parseWant(t, f, site+"root = \"$DIR/www\"\n[[site.route]]\npath = \"/r/\"\nproxy = [\"https://a:1/p\", \"https://b:1/q\"]",
		`tlspilot.toml:6: site[1].route[1].proxy[2]: "https://b:1/q": its path "/q"`)
	f.mustParse(t, site+`proxy = ["http://a:1/x/", "https://b:2/x/"]`)
}

// TestURLPorts: URLs with a port no server listens on (0, 99999) passed
// check as url.Parse takes them: a redirect sent every client to a URL
// it cannot open, and the CA, the webhook, the OCSP responder or the
// issuer was never reached.
func TestURLPorts(t *testing.T) {
	f := newFixture(t)
	site := "[[site]]\nnames = [\"a.example\"]\n"
	for _, p := range []string{"0", "99999"} {
		parseWant(t, f, site+`redirect = "https://b.example:`+p+`{uri}"`, `tlspilot.toml:3: site[1].redirect: "https://b.example:`+p+`{uri}": port `+p+` is not from 1 to 65535`)
		parseWant(t, f, `ca = "https://acme.example:`+p+`/dir"`, `tlspilot.toml:1: ca: "https://acme.example:`+p+`/dir": port `+p+` is not from 1 to 65535`)
		parseWant(t, f, `notify_webhook = "https://h.example:`+p+`/tls"`, `tlspilot.toml:1: notify_webhook: "https://h.example:`+p+`/tls": port `+p)
		parseWant(t, f, site+"root = \"$DIR/www\"\n[site.client_auth]\nca = \"$DIR/ca.pem\"\nocsp = true\nocsp_responder = \"http://o.example:"+p+"/\"",
			`tlspilot.toml:7: site[1].client_auth.ocsp_responder: "http://o.example:`+p+`/": port `+p)
		_, err := ParseAgent(filepath.Join(f.dir, "agent.toml"), []byte("issuer = \"https://i.example:"+p+"\"\nissuer_ca = \""+f.dir+"/ca.pem\"\nstorage = \""+f.dir+"/a\"\n"))
		if want := `agent.toml:1: issuer: "https://i.example:` + p + `": port ` + p; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("agent issuer port %s: %v, want %q", p, err, want)
		}
	}
	f.mustParse(t, site+`redirect = "https://b.example:8443{uri}"`)
	f.mustParse(t, `ca = "https://acme.example:14000/dir"`)
}

// TestSeveralNamesInOneString: names written as one string, the way
// certbot's -d takes them, got "idna: disallowed rune U+002C"; in
// admin_hosts they were taken for one name no Host is, silently.
func TestSeveralNamesInOneString(t *testing.T) {
	f := newFixture(t)
	for _, b := range []struct{ text, want string }{
		{"[[site]]\nnames = \"example.com, www.example.com\"", `tlspilot.toml:2: site[1].names: "example.com, www.example.com": one name per element of the list, such as ["example.com", ...]`},
		{"[[site]]\nnames = [\"a.example b.example\"]", `tlspilot.toml:2: site[1].names[1]: "a.example b.example": one name per element of the list`},
		{"[[certificate]]\nnames = \"a.example,b.example\"\ncombined = \"$DIR/c.pem\"", `tlspilot.toml:2: certificate[1].names: "a.example,b.example": one name per element of the list`},
		{`admin_hosts = "status.example.com,status2.example.com"`, `tlspilot.toml:1: admin_hosts: "status.example.com,status2.example.com": one name per element of the list`},
		{`admin_hosts = ["a,b"]`, `tlspilot.toml:1: admin_hosts[1]: "a,b": one name per element of the list`},
		{"[[site]]\nnames = [\"exa mple.com\"]", `tlspilot.toml:2: site[1].names[1]: invalid name: "exa mple.com"`},
	} {
		parseWant(t, f, b.text, b.want)
	}
	f.mustParse(t, `admin_hosts = ["tlspilot-admin", "status.example.com"]`)
}

// TestEmptyWebhookSecret: an empty (or blank) webhook secret file passed
// check, and serve refused it at start.
func TestEmptyWebhookSecret(t *testing.T) {
	f := newFixture(t)
	for _, content := range []string{"", " \n\t\n"} {
		f.write(t, "hook.secret", content, 0o600)
		parseWant(t, f, "notify_webhook = \"https://h.example/tls\"\nnotify_webhook_secret_file = \"hook.secret\"",
			"tlspilot.toml:2: notify_webhook_secret_file: $DIR/hook.secret is empty")
	}
	f.write(t, "hook.secret", "k\n", 0o600)
	f.mustParse(t, "notify_webhook = \"https://h.example/tls\"\nnotify_webhook_secret_file = \"hook.secret\"")
}
