package certbot

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCertbotParseConf: the configobj subset certbot writes, with line numbers.
func TestCertbotParseConf(t *testing.T) {
	text := `# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = /etc/letsencrypt/archive/example.com
fullchain = "/etc/letsencrypt/live/example.com/fullchain.pem"  # quoted

# Options used in the renewal process
[renewalparams]
account = 0123abcd
authenticator = webroot
webroot_path = /var/www/html,
pref_challs = dns-01, http-01,
renew_hook = systemctl reload nginx
empty =
[[webroot_map]]
example.com = /var/www/html
www.example.com = '/var/www/other, with comma'
`
	c, err := ParseConf("example.com.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		section, key, raw string
		list              []string
		line              int
	}{
		{"", "version", "2.1.0", nil, 2},
		{"", "fullchain", "/etc/letsencrypt/live/example.com/fullchain.pem", nil, 4},
		{"renewalparams", "account", "0123abcd", nil, 8},
		{"renewalparams", "webroot_path", "/var/www/html", []string{"/var/www/html"}, 10},
		{"renewalparams", "pref_challs", "dns-01, http-01", []string{"dns-01", "http-01"}, 11},
		{"renewalparams", "renew_hook", "systemctl reload nginx", nil, 12},
		{"renewalparams", "empty", "", nil, 13},
		{"renewalparams.webroot_map", "example.com", "/var/www/html", nil, 15},
		{"renewalparams.webroot_map", "www.example.com", "/var/www/other, with comma", nil, 16},
	} {
		v, ok := c.Get(tc.section, tc.key)
		if !ok || v.Raw != tc.raw || !slices.Equal(v.List, tc.list) || v.Line != tc.line {
			t.Errorf("%s.%s = %+v (%v), want raw %q list %q line %d", tc.section, tc.key, v, ok, tc.raw, tc.list, tc.line)
		}
	}
	if _, ok := c.Get("", "renew_before_expiry"); ok {
		t.Error("a commented key was read")
	}
	err = c.Errorf("renewalparams", "authenticator", "no")
	if err.Error() != "example.com.conf:9: renewalparams.authenticator: no" {
		t.Errorf("Errorf = %q", err)
	}
}

// TestCertbotParseConfErrors: malformed lines are refused with file and line.
func TestCertbotParseConfErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"a = 1\nno equals sign\n", "x.conf:2: want key = value"},
		{"[renewalparams\n", "x.conf:1: bad section header"},
		{"[[webroot_map]]\n", "x.conf:1: section"},
		{"a = \"open\n", "x.conf:1: a: unterminated quote"},
		{"[]\n", "x.conf:1: bad section header"},
	} {
		_, err := ParseConf("x.conf", []byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
}

// lineageFixture writes a certbot tree under dir with one lineage of
// names as certbot lays it out (live/ symlinks into archive/), with the
// given [renewalparams] lines, and returns the conf path.
func lineageFixture(t *testing.T, dir string, key crypto.Signer, params string, names ...string) string {
	t.Helper()
	name := names[0]
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: name}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(89 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	files := map[string][]byte{"cert": leaf, "chain": leaf, "fullchain": append(leaf, leaf...),
		"privkey": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})}
	archive, live := filepath.Join(dir, "archive", name), filepath.Join(dir, "live", name)
	for _, d := range []string{archive, live, filepath.Join(dir, "renewal")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("# renew_before_expiry = 30 days\nversion = 2.1.0\narchive_dir = %s\n", archive)
	for _, f := range []string{"cert", "privkey", "chain", "fullchain"} {
		if err := os.WriteFile(filepath.Join(archive, f+"1.pem"), files[f], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "archive", name, f+"1.pem"), filepath.Join(live, f+".pem")); err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("%s = %s\n", f, filepath.Join(live, f+".pem"))
	}
	conf += "\n# Options used in the renewal process\n[renewalparams]\nserver = https://acme.example/directory\naccount = 0123\n" + params
	path := filepath.Join(dir, "renewal", name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ecKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCertbotReadLineage: the current certificate and key are read through
// the live/ symlinks, with the renewal settings.
func TestCertbotReadLineage(t *testing.T) {
	dir := t.TempDir()
	key := ecKey(t)
	path := lineageFixture(t, dir, key, "authenticator = standalone\n", "example.com", "www.example.com")
	l, err := ReadLineage(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "example.com" || !slices.Equal(l.Names(), []string{"example.com", "www.example.com"}) ||
		l.Server != "https://acme.example/directory" || l.Account != "0123" || l.Authenticator != "standalone" {
		t.Errorf("lineage %+v, names %v", l, l.Names())
	}
	if !l.Key.Public().(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("wrong key")
	}
	ls, errs, err := ReadDir(dir)
	if err != nil || len(errs) != 0 || len(ls) != 1 {
		t.Errorf("ReadDir: %d lineages, %v, %v", len(ls), errs, err)
	}
}

// TestCertbotReadLineageMissingArchive: a live/ symlink whose archive/ file is
// gone is refused naming the conf line, the live path and the missing
// archive file; ReadDir goes on with the other lineages.
func TestCertbotReadLineageMissingArchive(t *testing.T) {
	dir := t.TempDir()
	lineageFixture(t, dir, ecKey(t), "authenticator = standalone\n", "a.example")
	path := lineageFixture(t, dir, ecKey(t), "authenticator = standalone\n", "b.example")
	missing := filepath.Join(dir, "archive", "b.example", "fullchain1.pem")
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	_, err := ReadLineage(path)
	want := fmt.Sprintf("%s:7: fullchain: %s points at %s, which is missing", path, filepath.Join(dir, "live", "b.example", "fullchain.pem"), missing)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadLineage: %v\nwant %s", err, want)
	}
	ls, errs, err := ReadDir(dir)
	if err != nil || len(ls) != 1 || ls[0].Name != "a.example" || len(errs) != 1 || !strings.Contains(errs[0].Error(), want) {
		t.Errorf("ReadDir: %d lineages, %v, %v", len(ls), errs, err)
	}
}

// TestCertbotReadLineageWrongKey: a private key that is not the certificate's
// is refused at the privkey line.
func TestCertbotReadLineageWrongKey(t *testing.T) {
	dir := t.TempDir()
	path := lineageFixture(t, dir, ecKey(t), "authenticator = standalone\n", "a.example")
	other := lineageFixture(t, t.TempDir(), ecKey(t), "", "a.example")
	b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(other)), "archive", "a.example", "privkey1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "archive", "a.example", "privkey1.pem"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLineage(path); err == nil || !strings.Contains(err.Error(), ":5: privkey: ") {
		t.Errorf("ReadLineage: %v, want a privkey error at line 5", err)
	}
}

// TestCertbotSettings: certbot's renewal settings mapped onto tlspilot's, or
// refused at the key with what to do.
func TestCertbotSettings(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, params string
		key          crypto.Signer
		want         Settings
		err          string
	}{
		{name: "standalone default port", params: "authenticator = standalone\n",
			want: Settings{KeyType: "ecdsa-p256", Challenge: "http-01", Standalone: ":80"}},
		{name: "standalone address and port and deploy hook", params: "authenticator = standalone\nhttp01_address = 127.0.0.1\nhttp01_port = 8080\nrenew_hook = systemctl reload nginx\n",
			want: Settings{KeyType: "ecdsa-p256", Challenge: "http-01", Standalone: "127.0.0.1:8080", Reload: []string{"systemctl", "reload", "nginx"}}},
		{name: "webroot rsa post hook", key: rsaKey, params: "authenticator = webroot\nwebroot_path = /var/www/html,\npost_hook = /usr/sbin/service apache2 reload\n[[webroot_map]]\na.example = /var/www/html\n",
			want: Settings{KeyType: "rsa2048", Challenge: "http-01", ChallengeDir: "/var/www/html/.well-known/acme-challenge", Reload: []string{"/usr/sbin/service", "apache2", "reload"}}},
		{name: "notes", params: "authenticator = standalone\nreuse_key = True\npreferred_chain = ISRG Root X1\nmust_staple = False\n",
			want: Settings{KeyType: "ecdsa-p256", Challenge: "http-01", Standalone: ":80", Notes: []string{"reuse_key", "preferred_chain"}}},
		{name: "two webroots", params: "authenticator = webroot\n[[webroot_map]]\na.example = /var/www/a\nwww.a.example = /var/www/b\n", err: "renewalparams.webroot_map: names are validated from 2 webroots"},
		{name: "dns plugin", params: "authenticator = dns-cloudflare\ndns_cloudflare_credentials = /root/cf.ini\n", err: `:13: renewalparams.authenticator: "dns-cloudflare": certbot's DNS plugins`},
		{name: "nginx plugin", params: "authenticator = nginx\ninstaller = nginx\n", err: "does not edit the nginx config"},
		{name: "manual", params: "authenticator = manual\n", err: `"manual": tlspilot has no equivalent`},
		{name: "no authenticator", params: "", err: "renewalparams.authenticator: missing"},
		{name: "pre hook", params: "authenticator = standalone\npre_hook = systemctl stop nginx\npost_hook = systemctl start nginx\n", err: `:14: renewalparams.pre_hook: "systemctl stop nginx": tlspilot runs no command before renewing`},
		{name: "shell hook", params: "authenticator = standalone\nrenew_hook = systemctl reload nginx && echo done\n", err: "renewalparams.renew_hook: \"systemctl reload nginx && echo done\" needs a shell"},
		{name: "two hooks", params: "authenticator = standalone\nrenew_hook = systemctl reload nginx\npost_hook = systemctl reload postfix\n", err: "renewalparams.post_hook"},
		{name: "dns preferred for standalone", params: "authenticator = standalone\npref_challs = tls-alpn-01,\n", err: "renewalparams.pref_challs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = ecKey(t)
			}
			l, err := ReadLineage(lineageFixture(t, t.TempDir(), key, tc.params, "a.example"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Settings()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Settings: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			notes := got.Notes
			got.Notes, tc.want.Notes = nil, keysIn(notes, tc.want.Notes)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || tc.want.Notes != nil {
				t.Errorf("Settings = %+v (notes %q), want %+v", got, notes, tc.want)
			}
		})
	}
}

// keysIn returns nil when every key has a note, else the missing keys.
func keysIn(notes, keys []string) []string {
	var missing []string
	for _, k := range keys {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, " "+k+" = ") }) {
			missing = append(missing, k)
		}
	}
	if len(notes) != len(keys) {
		missing = append(missing, fmt.Sprintf("(%d notes)", len(notes)))
	}
	return missing
}

// TestCertbotReadAccount: certbot's account directory, RSA and EC JWKs.
func TestCertbotReadAccount(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec := ecKey(t).(*ecdsa.PrivateKey)
	b := func(x *big.Int) string { return base64.RawURLEncoding.EncodeToString(x.Bytes()) }
	ecd, err := ec.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		jwk  map[string]string
		key  crypto.Signer
	}{
		{"rsa", map[string]string{"kty": "RSA", "n": b(rsaKey.N), "e": "AQAB", "d": b(rsaKey.D), "p": b(rsaKey.Primes[0]),
			"q": b(rsaKey.Primes[1]), "dp": b(rsaKey.Precomputed.Dp), "dq": b(rsaKey.Precomputed.Dq), "qi": b(rsaKey.Precomputed.Qinv)}, rsaKey},
		{"ec", map[string]string{"kty": "EC", "crv": "P-256", "d": base64.RawURLEncoding.EncodeToString(ecd)}, ec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ad := filepath.Join(dir, "accounts", "acme.example:14000", "dir", "abc")
			if err := os.MkdirAll(ad, 0o700); err != nil {
				t.Fatal(err)
			}
			kj, _ := json.Marshal(tc.jwk)
			writeFile(t, filepath.Join(ad, "private_key.json"), kj)
			writeFile(t, filepath.Join(ad, "regr.json"), []byte(`{"body": {}, "uri": "https://acme.example:14000/my-account/1"}`))
			a, err := ReadAccount(dir, "https://acme.example:14000/dir", "abc")
			if err != nil {
				t.Fatal(err)
			}
			if a.URL != "https://acme.example:14000/my-account/1" || !a.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.key.Public()) {
				t.Errorf("account %+v", a)
			}
		})
	}
	if _, err := ReadAccount(t.TempDir(), "https://acme.example/dir", "../x"); err == nil {
		t.Error("an account id with a path was accepted")
	}
	if _, err := ReadAccount(t.TempDir(), "https://acme.example/dir", "abc"); err == nil || !strings.Contains(err.Error(), "regr.json") {
		t.Errorf("missing account: %v", err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCertbotUnlink: a live/ symlink becomes a regular file with the target's
// content and mode; the archive/ file is untouched; a regular file is
// left alone.
func TestCertbotUnlink(t *testing.T) {
	dir := t.TempDir()
	lineageFixture(t, dir, ecKey(t), "", "a.example")
	live := filepath.Join(dir, "live", "a.example", "privkey.pem")
	archive := filepath.Join(dir, "archive", "a.example", "privkey1.pem")
	want, _ := os.ReadFile(archive)
	for range 2 {
		if err := Unlink(live); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Lstat(live)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after Unlink: %v %v", fi.Mode(), err)
	}
	got, _ := os.ReadFile(live)
	still, _ := os.ReadFile(archive)
	if string(got) != string(want) || string(still) != string(want) {
		t.Error("content changed")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "live", "a.example", ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
