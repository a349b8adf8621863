package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// runCertbot obtains a certificate for names from e's Pebble with
// Debian's certbot (standalone on Pebble's http-01 port) and returns
// certbot's config directory.
func runCertbot(t *testing.T, e *env, names ...string) string {
	t.Helper()
	bin, err := exec.LookPath("certbot")
	if err != nil {
		t.Fatalf("certbot is required (Debian package certbot): %v", err)
	}
	le := filepath.Join(e.dir, "letsencrypt")
	args := []string{"certonly", "--standalone", "--http-01-address", "127.0.0.1",
		"--http-01-port", strconv.Itoa(e.p.HTTPPort), "--server", e.p.DirectoryURL,
		"--config-dir", le, "--work-dir", filepath.Join(e.dir, "certbot-work"), "--logs-dir", filepath.Join(e.dir, "certbot-logs"),
		"--agree-tos", "-m", "ops@example.test", "--no-eff-email", "--non-interactive",
		"--deploy-hook", "true"}
	for _, n := range names {
		args = append(args, "-d", n)
	}
	// certbot 2.1 retries a rejected nonce once only, and a second
	// rejection in a row ends it (with "AttributeError: can't set
	// attribute"): with Pebble rejecting a few nonces, a run may fail,
	// and is tried again (with the account it registered).
	for try := 1; ; try++ {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+filepath.Join(e.dir, "api-root.pem"))
		out, err := cmd.CombinedOutput()
		if err == nil {
			return le
		}
		if try == 3 {
			t.Fatalf("certbot, 3 tries: %v\n%s", err, out)
		}
		t.Logf("certbot try %d: %v\n%s", try, err, out)
	}
}

// leafOf returns the first certificate of the PEM file at path.
func leafOf(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// treeState describes every file under dirs (type, mode, content hash),
// to check that a dry run changes nothing.
func treeState(t *testing.T, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "%s %v", p, fi.Mode())
			if fi.Mode().IsRegular() {
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				h := sha256.Sum256(data)
				fmt.Fprintf(&b, " %s", hex.EncodeToString(h[:8]))
			}
			b.WriteByte('\n')
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// importCertbot runs `tlspilot import certbot` and checks its exit code.
func importCertbot(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := runBinary(t, append([]string{"import", "certbot"}, args...)...)
	if code != want {
		t.Fatalf("import certbot %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, out, errOut)
	}
	return out, errOut
}

// TestImportCertbot: a certificate certbot obtained from Pebble
// (standalone) is taken over. The dry run changes nothing; --apply
// appends the [[certificate]] deploying to certbot's live/ files, which
// become regular files with the same content; status shows certbot's
// serial, and Pebble saw no new order. Importing again adds nothing. The
// next renewal is tlspilot's, with certbot's account, an ARI
// "replaces" naming certbot's certificate, deployed to the same files.
func TestImportCertbot(t *testing.T) {
	e := newEnvWith(t, testenv.PebbleOptions{NonceReject: 5}) // see runCertbot
	e.http = freeAddr(t)                                      // Pebble's http-01 port is certbot's, then tlspilot's standalone listener
	le := runCertbot(t, e, "www.example.test", "example.test")
	live := filepath.Join(le, "live", "www.example.test")
	orig := leafOf(t, filepath.Join(live, "fullchain.pem"))
	serial := fmt.Sprintf("%x", orig.SerialNumber)
	conf := e.config("")
	orders := e.p.Orders()

	before := treeState(t, le, e.dir+"/tlspilot.toml")
	out, _ := importCertbot(t, 0, "--config", conf, le)
	for _, want := range []string{"www.example.test: www.example.test example.test, serial " + serial, "would store", "would store as tlspilot's account",
		"would replace the live/www.example.test/*.pem symbolic links with regular files", "1 lineage(s): 1 to import, 0 already imported, 0 refused",
		`standalone = "127.0.0.1:` + strconv.Itoa(e.p.HTTPPort) + `"`, "dry run: nothing changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if after := treeState(t, le, e.dir+"/tlspilot.toml"); after != before {
		t.Errorf("the dry run changed files:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "storage")); err == nil {
		t.Error("the dry run created the storage")
	}

	out, _ = importCertbot(t, 0, "--config", conf, "--apply", le)
	t.Logf("import --apply:\n%s", out)
	for _, want := range []string{"stored", "systemctl disable --now certbot.timer", "account "} {
		if !strings.Contains(out, want) {
			t.Errorf("--apply output lacks %q:\n%s", want, out)
		}
	}
	text := readFile(t, conf)
	if !strings.Contains(text, `names = ["www.example.test", "example.test"]`) || !strings.Contains(text, `reload = ["true"]`) || !strings.Contains(text, filepath.Join(live, "privkey.pem")) {
		t.Errorf("config after --apply:\n%s", text)
	}
	for _, f := range []string{"fullchain.pem", "privkey.pem", "cert.pem", "chain.pem"} {
		fi, err := os.Lstat(filepath.Join(live, f))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("live/%s after --apply: %v %v, want a regular file", f, fi.Mode(), err)
		}
	}
	if got := statusSerial(t, conf); got != serial {
		t.Errorf("status serial %s, want certbot's %s", got, serial)
	}
	certbotRenewRefused(t, e, le)
	// Nothing is due: certs --once deploys certbot's certificate (the
	// same content, so nothing is written) without an order; it asks the
	// CA for the renewal window once (the import stored none), and the
	// next run asks nothing.
	requests, asked := e.p.Requests(), e.p.RequestsTo("/draft-ietf-acme-ari-03/renewalInfo/")
	certsOnce(t, conf, 0)
	if got := e.p.RequestsTo("/draft-ietf-acme-ari-03/renewalInfo/"); got != asked+1 {
		t.Errorf("the first certs --once after the import asked for renewal information %d times, want once", got-asked)
	}
	t.Logf("first certs --once after the import: %d requests to the CA", e.p.Requests()-requests)
	requests = e.p.Requests()
	certsOnce(t, conf, 0)
	if got := e.p.Requests(); got != requests {
		t.Errorf("a second certs --once after the import sent %d requests to the CA, want none", got-requests)
	}
	if got := e.p.Orders(); got != orders {
		t.Errorf("Pebble orders %d after certs --once, want %d (nothing due)", got, orders)
	}
	if c, _ := deployed(t, conf); c.Deploy.Serial != serial {
		t.Errorf("deployed serial %q after certs --once, want certbot's %s", c.Deploy.Serial, serial)
	}
	if got := e.p.Orders(); got != orders {
		t.Errorf("Pebble orders %d after import, want %d (no new order)", got, orders)
	}

	out, _ = importCertbot(t, 0, "--config", conf, le)
	for _, want := range []string{"already imported: [[certificate]] at", "already stored: the certificate", "): already stored\n", "dry run"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run after --apply lacks %q:\n%s", want, out)
		}
	}
	out, _ = importCertbot(t, 0, "--config", conf, "--apply", le)
	if !strings.Contains(out, "already imported") || !strings.Contains(out, "already stored") {
		t.Errorf("second --apply does not report the lineage as imported:\n%s", out)
	}
	if again := readFile(t, conf); again != text {
		t.Errorf("second --apply changed the config:\n%s", again)
	}

	code, rout, rerr := runBinary(t, "renew", "--force", "--config", conf, "www.example.test")
	if code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, rout, rerr)
	}
	if got := e.p.Orders(); got != orders+1 {
		t.Errorf("Pebble orders %d after renew, want %d", got, orders+1)
	}
	ari, err := acmeclient.CertID(orig)
	if err != nil {
		t.Fatal(err)
	}
	if !testenv.PebbleFindsSerial(orig) {
		ari = "" // Pebble cannot find it, refuses the order, and tlspilot orders without replaces
	}
	if r := e.p.Replaces(); len(r) == 0 || r[len(r)-1] != ari {
		t.Errorf("renewal replaces %q, want certbot's certificate %s", r, ari)
	}
	certsOnce(t, conf, 0)
	now := leafOf(t, filepath.Join(live, "fullchain.pem"))
	if now.SerialNumber.Cmp(orig.SerialNumber) == 0 {
		t.Error("live/fullchain.pem still holds certbot's certificate after tlspilot's renewal and deploy")
	}
	if c, _ := deployed(t, conf); c.Serial != fmt.Sprintf("%x", now.SerialNumber) || c.Deploy.Serial != c.Serial {
		t.Errorf("status serial %s (deploy %+v), deployed %x", c.Serial, c.Deploy, now.SerialNumber)
	}
}

// statusSerial returns the serial of the one managed certificate as
// `tlspilot status --json` reports it.
func statusSerial(t *testing.T, conf string) string {
	t.Helper()
	r, _ := status(t, statusSchema(t), conf)
	for _, c := range r.Certificates {
		if c.Managed {
			return c.Serial
		}
	}
	t.Fatalf("status reports no managed certificate: %+v", r)
	return ""
}

// certbotRenewRefused checks that a `certbot renew` left enabled by
// mistake fails on the imported lineage and changes none of its files.
func certbotRenewRefused(t *testing.T, e *env, le string) {
	t.Helper()
	before := treeState(t, filepath.Join(le, "live"), filepath.Join(le, "archive"))
	cmd := exec.Command("certbot", "renew", "--force-renewal", "--config-dir", le, "--work-dir", filepath.Join(e.dir, "certbot-work"),
		"--logs-dir", filepath.Join(e.dir, "certbot-logs"), "--non-interactive")
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+filepath.Join(e.dir, "api-root.pem"))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "symlink") {
		t.Errorf("certbot renew after the import: %v, want a failure about symlinks:\n%s", err, out)
	}
	if after := treeState(t, filepath.Join(le, "live"), filepath.Join(le, "archive")); after != before {
		t.Errorf("certbot renew changed files after the import:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// fakeLineage writes a lineage of certbot's layout under le (live/
// symlinks into archive/) with a self-signed certificate for name and
// the given [renewalparams] lines; it returns the conf path.
func fakeLineage(t *testing.T, le, name, params string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(80 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	files := map[string]string{"cert": leaf, "chain": leaf, "fullchain": leaf + leaf,
		"privkey": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))}
	conf := "version = 2.1.0\n"
	for _, f := range []string{"cert", "privkey", "chain", "fullchain"} {
		write(t, filepath.Join(le, "archive", name, f+"1.pem"), files[f])
		l := filepath.Join(le, "live", name, f+".pem")
		write(t, l, "")
		if err := os.Remove(l); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "archive", name, f+"1.pem"), l); err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("%s = %s\n", f, l)
	}
	path := filepath.Join(le, "renewal", name+".conf")
	server := "server = " + fakeCA + "\n"
	if strings.Contains(params, "server = ") {
		server = ""
	}
	write(t, path, conf+"[renewalparams]\naccount = 0123\n"+server+params)
	return path
}

// fakeCA is the CA of fakeLineage's lineages unless they name another.
const fakeCA = "https://acme.example/directory"

// TestImportCertbotRefused: lineages that cannot be imported (an
// archive file gone, a DNS plugin, another CA than the config's) are
// refused with the file, line and key; the importable ones (standalone;
// webroot with a deploy hook) are imported anyway, and the refused ones'
// files are left as they were. Exit 1.
func TestImportCertbotRefused(t *testing.T) {
	dir := t.TempDir()
	le := filepath.Join(dir, "letsencrypt")
	fakeLineage(t, le, "good.example", "authenticator = standalone\n")
	webroot := filepath.Join(dir, "www")
	fakeLineage(t, le, "web.example", fmt.Sprintf("authenticator = webroot\nwebroot_path = %s,\nrenew_hook = systemctl reload nginx\n[[webroot_map]]\nweb.example = %[1]s\n", webroot))
	missing := fakeLineage(t, le, "missing.example", "authenticator = standalone\n")
	archived := filepath.Join(le, "archive", "missing.example", "fullchain1.pem")
	if err := os.Remove(archived); err != nil {
		t.Fatal(err)
	}
	dns := fakeLineage(t, le, "dns.example", "authenticator = dns-cloudflare\n")
	// From Let's Encrypt: under a config naming another CA it would be
	// replaced at the first run (before, it was imported and replaced).
	other := fakeLineage(t, le, "other.example", "server = https://acme-v02.api.letsencrypt.org/directory\nauthenticator = standalone\n")
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, fmt.Sprintf("# my settings\nca = %q\nagree_terms = true\nstorage = %q\n", fakeCA, filepath.Join(dir, "storage")))
	if err := os.Chmod(conf, 0o640); err != nil {
		t.Fatal(err)
	}
	refused := treeState(t, filepath.Join(le, "live", "missing.example"), filepath.Join(le, "live", "dns.example"), filepath.Join(le, "live", "other.example"))

	out, errOut := importCertbot(t, 1, "--config", conf, "--apply", le)
	t.Logf("import --apply:\n%s%s", out, errOut)
	for _, want := range []string{
		fmt.Sprintf("refused: %s:5: fullchain: %s points at %s, which is missing", missing, filepath.Join(le, "live", "missing.example", "fullchain.pem"), archived),
		fmt.Sprintf("refused: %s:9: renewalparams.authenticator: \"dns-cloudflare\"", dns),
		fmt.Sprintf("refused: %s:8: renewalparams.server: https://acme-v02.api.letsencrypt.org/directory is not the config's ca (%s): "+
			"tlspilot would replace this certificate with one from that CA at its first run; to take it over as it is, set ca = \"letsencrypt\" in %s", other, fakeCA, conf),
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	text := readFile(t, conf)
	challengeDir := filepath.Join(webroot, ".well-known", "acme-challenge")
	if !strings.HasPrefix(text, "# my settings\n") || strings.Count(text, "[[certificate]]") != 2 || !strings.Contains(text, `names = ["good.example"]`) ||
		!strings.Contains(text, `standalone = ":80"`) || !strings.Contains(text, fmt.Sprintf("challenge_dir = %q", challengeDir)) ||
		!strings.Contains(text, `reload = ["systemctl", "reload", "nginx"]`) {
		t.Errorf("config after import:\n%s", text)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("config mode after import: %v %v, want 0640", fi.Mode(), err)
	}
	if after := treeState(t, filepath.Join(le, "live", "missing.example"), filepath.Join(le, "live", "dns.example"), filepath.Join(le, "live", "other.example")); after != refused {
		t.Errorf("refused lineages changed:\nbefore:\n%s\nafter:\n%s", refused, after)
	}
	if fi, err := os.Lstat(filepath.Join(le, "live", "good.example", "fullchain.pem")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("live/good.example/fullchain.pem after import: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(challengeDir); err != nil || !fi.IsDir() {
		t.Errorf("challenge_dir after import: %v", err)
	}
	if out, _ := importCertbot(t, 1, "--config", conf, le); strings.Count(out, "already imported: [[certificate]]") != 2 ||
		!strings.Contains(out, "5 lineage(s): 0 to import, 2 already imported, 3 refused") {
		t.Errorf("dry run after --apply:\n%s", out)
	}
}
