package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
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
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+filepath.Join(e.dir, "api-root.pem"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("certbot: %v\n%s", err, out)
	}
	return le
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
	e := newEnv(t)
	e.http = freeAddr(t) // Pebble's http-01 port is certbot's, then tlspilot's standalone listener
	le := runCertbot(t, e, "www.example.test", "example.test")
	live := filepath.Join(le, "live", "www.example.test")
	orig := leafOf(t, filepath.Join(live, "fullchain.pem"))
	serial := fmt.Sprintf("%x", orig.SerialNumber)
	conf := e.config("")
	orders := e.p.Orders()

	before := treeState(t, le, e.dir+"/tlspilot.toml")
	out, _ := importCertbot(t, 0, "--config", conf, le)
	for _, want := range []string{"www.example.test: www.example.test example.test, serial " + serial, "would store",
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
	if !strings.Contains(text, `names = ["www.example.test", "example.test"]`) || !strings.Contains(text, filepath.Join(live, "privkey.pem")) {
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
	if got := e.p.Orders(); got != orders {
		t.Errorf("Pebble orders %d after import, want %d (no new order)", got, orders)
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
