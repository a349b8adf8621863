package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The serving half of issue 11: `serve` answering http-01 from files that
// `certs` writes, cert_file sites whose files appear later, and a serve
// that needs no writable storage when it obtains nothing itself.

// certsConfig writes a config for `tlspilot certs` with its own storage
// and one [[certificate]] for name answered through challengeDir and
// deployed to dir/live/<name>/; it returns the config and the deployed
// fullchain and privkey.
func (e *env) certsConfig(name, challengeDir string) (conf, fullchain, privkey string) {
	e.t.Helper()
	live := filepath.Join(e.dir, "live", name)
	if err := os.MkdirAll(live, 0o755); err != nil {
		e.t.Fatal(err)
	}
	fullchain, privkey = filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem")
	conf = filepath.Join(e.dir, "certs.toml")
	write(e.t, conf, fmt.Sprintf(`ca = %q
ca_root = %q
agree_terms = true
storage = %q

[[certificate]]
names = [%q]
challenge_dir = %q
fullchain = %q
privkey = %q
`, e.p.DirectoryURL, filepath.Join(e.dir, "api-root.pem"), filepath.Join(e.dir, "certs-storage"), name, challengeDir, fullchain, privkey))
	return conf, fullchain, privkey
}

// plainGet sends one request as written to serve's HTTP listener and
// returns the status, the Content-Type and the body.
func plainGet(t *testing.T, addr, host, target string) (int, string, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestServeChallengeDir: serve with a top-level challenge_dir answers
// http-01 from the files `tlspilot certs` writes there: certs, with its
// own storage and a [[certificate]] using the same directory, obtains a
// certificate from Pebble validated through serve's HTTP listener. serve's
// own site still gets its certificate (its own tokens still answer). A
// file written there by hand is served as text/plain; a missing token and
// tokens with characters outside the base64url alphabet get 404.
func TestServeChallengeDir(t *testing.T) {
	e := newEnv(t)
	acme := filepath.Join(e.dir, "acme-challenge")
	if err := os.Mkdir(acme, 0o755); err != nil {
		t.Fatal(err)
	}
	e.config(fmt.Sprintf("challenge_dir = %q\n\n[[site]]\nnames = [\"own.example.test\"]\nroot = %q\n", acme, filepath.Join(e.dir, "www")))
	e.serve()
	e.waitIssued("own.example.test", 60*time.Second)

	conf, fullchain, privkey := e.certsConfig("mail.example.test", acme)
	certsOnce(t, conf, 0)
	verifyPair(t, e, fullchain, privkey, "mail.example.test")
	if left, _ := os.ReadDir(acme); len(left) != 0 {
		t.Errorf("answer files left behind: %v", left)
	}

	const tok = "Hand_written-Token1"
	ka := tok + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
	write(t, filepath.Join(acme, tok), ka+"\n")
	write(t, filepath.Join(e.dir, "outside"), ka)
	if code, ctype, body := plainGet(t, e.http, "mail.example.test", "/.well-known/acme-challenge/"+tok); code != 200 || body != ka || ctype != "text/plain" {
		t.Errorf("answer file: %d %q %q, want 200 text/plain %q", code, ctype, body, ka)
	}
	for _, target := range []string{"missing", "..", "%2e%2e", "..%2foutside", "..%2Foutside", "../outside", "a.b", tok + "%2f", "%00"} {
		target = "/.well-known/acme-challenge/" + target
		if code, _, body := plainGet(t, e.http, "mail.example.test", target); code != 404 || strings.Contains(body, ka) {
			t.Errorf("GET %s: %d %q, want 404", target, code, body)
		}
	}
}

// verifyPair checks that certFile and keyFile hold a matching pair whose
// chain, up to Pebble's root, is valid for name.
func verifyPair(t *testing.T, e *env, certFile, keyFile, name string) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(ic)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: e.roots, Intermediates: inter}); err != nil {
		t.Errorf("%s: %v", certFile, err)
	}
	return c.Leaf
}
