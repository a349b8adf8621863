package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// servingHalf is a serve run with a config of its own, no CA involved.
type servingHalf struct {
	t           *testing.T
	dir, conf   string
	http, https string
}

func newServingHalf(t *testing.T) *servingHalf {
	t.Helper()
	h := &servingHalf{t: t, dir: t.TempDir(), http: freeAddr(t), https: freeAddr(t)}
	h.conf = filepath.Join(h.dir, "tlspilot.toml")
	write(t, filepath.Join(h.dir, "www", "index.html"), "served\n")
	return h
}

// config writes the config: the listeners, admin off, then top and the
// sites.
func (h *servingHalf) config(top, sites string) {
	h.t.Helper()
	write(h.t, h.conf, fmt.Sprintf("http_listen = %q\nhttps_listen = %q\nadmin_listen = \"off\"\naccess_log = \"off\"\n%s\n%s", h.http, h.https, top, sites))
}

// serve starts `tlspilot serve` with the config, with its output in a
// buffer, and stops it at cleanup; it returns once the HTTPS listener
// accepts connections.
func (h *servingHalf) serve(cred *syscall.Credential) (*exec.Cmd, *syncBuffer) {
	h.t.Helper()
	cmd := exec.Command(buildBinary(h.t), "serve", "--config", h.conf)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	h.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if h.t.Failed() {
			h.t.Logf("tlspilot output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			h.t.Fatalf("serve stopped at start:\n%s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", h.https, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("serve does not listen on %s:\n%s", h.https, out.String())
		}
	}
	return cmd, out
}

// handshake returns the certificate serve presents for name, unverified.
func (h *servingHalf) handshake(name string) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", h.https, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestServeCertFilesAppear: a cert_file site whose files do not exist yet
// does not stop serve from starting: it presents a temporary self-signed
// certificate and logs a warning naming the files; as soon as both files
// are written, it presents them, without a restart or a signal, and a
// client trusting that certificate gets the site.
func TestServeCertFilesAppear(t *testing.T) {
	h := newServingHalf(t)
	live := filepath.Join(h.dir, "live", "late.example.test")
	fullchain, privkey := filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem")
	h.config("", fmt.Sprintf("[[site]]\nnames = [\"late.example.test\"]\nroot = %q\ncert_file = %q\nkey_file = %q\n", filepath.Join(h.dir, "www"), fullchain, privkey))
	code, out, errOut := runCLI(t, "check", "--config", h.conf)
	if code != 0 || !strings.Contains(out, "not there yet") {
		t.Errorf("check: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	_, log := h.serve(nil)
	temp, err := h.handshake("late.example.test")
	if err != nil || temp.Subject.CommonName != "tlspilot temporary certificate" || temp.VerifyHostname("late.example.test") != nil {
		t.Fatalf("before the files exist: %v, %+v", err, temp)
	}
	if l := log.String(); !strings.Contains(l, "certificate files do not exist yet") || !strings.Contains(l, "cert_file="+fullchain) || !strings.Contains(l, "key_file="+privkey) {
		t.Errorf("no warning naming the files:\n%s", l)
	}

	tmp := t.TempDir()
	cert, key := opensslCert(t, tmp, "late.example.test")
	if err := os.MkdirAll(live, 0o755); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{key: privkey, cert: fullchain} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	want := readCert(t, fullchain)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := h.handshake("late.example.test")
		if err == nil && got.Equal(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the written certificate is not served within 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	roots := x509.NewCertPool()
	roots.AddCert(want)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, h.https)
		},
	}}
	if code, body, _ := get(t, c, "https://late.example.test/"); code != 200 || body != "served\n" {
		t.Errorf("GET with the written certificate: %d %q", code, body)
	}
	if !strings.Contains(log.String(), "certificate files appeared") {
		t.Errorf("the switch is not logged:\n%s", log.String())
	}
}

// readCert returns the first certificate of a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// snapshot lists every file and directory under dir with its size and
// modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServeReadOnlyStorage: a serve whose sites all bring their own
// certificate files (one written, one not yet) runs as a user that may
// write nothing: started as root with user = "nobody", its storage a
// root-owned 0555 directory without a key-encryption key, it starts,
// serves the sites and challenge_dir's answers, reloads on SIGHUP, and
// creates or changes no file anywhere in its directory, storage
// included. check agrees: it does not ask for a writable storage.
func TestServeReadOnlyStorage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root, to run serve as another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	h := newServingHalf(t)
	for _, d := range []string{filepath.Dir(h.dir), h.dir} { // nobody may pass through
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	storage, acme, certs := filepath.Join(h.dir, "storage"), filepath.Join(h.dir, "acme-challenge"), filepath.Join(h.dir, "certs")
	for _, d := range []string{storage, acme, certs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(storage, 0o555); err != nil {
		t.Fatal(err)
	}
	cert, key := opensslCert(t, certs, "files.example.test")
	uid, _ := strconv.Atoi(nobody.Uid)
	if err := os.Chown(key, uid, -1); err != nil { // the key is the serving user's to read
		t.Fatal(err)
	}
	const tok = "ReadOnly_Token-1"
	ka := tok + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
	write(t, filepath.Join(acme, tok), ka)
	www := filepath.Join(h.dir, "www")
	late := filepath.Join(h.dir, "live", "late.example.test")
	sites := fmt.Sprintf(`[[site]]
names = ["files.example.test"]
root = %q
cert_file = %q
key_file = %q

[[site]]
names = ["late.example.test"]
root = %q
cert_file = %q
key_file = %q
`, www, cert, key, www, filepath.Join(late, "fullchain.pem"), filepath.Join(late, "privkey.pem"))
	h.config(fmt.Sprintf("user = \"nobody\"\nstorage = %q\nchallenge_dir = %q\n", storage, acme), sites)

	code, out, errOut := runCLI(t, "check", "--config", h.conf)
	if code != 0 || !strings.Contains(out, "storage path: "+storage+" (serve does not open it") {
		t.Errorf("check: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	before := snapshot(t, h.dir)
	cmd, log := h.serve(nil)
	if got := procUID(t, cmd.Process.Pid); got != nobody.Uid {
		t.Errorf("serve runs as uid %s, want nobody (%s)", got, nobody.Uid)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, cert))
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, h.https)
		},
	}}
	if code, body, _ := get(t, c, "https://files.example.test/"); code != 200 || body != "served\n" {
		t.Errorf("GET https://files.example.test/: %d %q", code, body)
	}
	if leaf, err := h.handshake("late.example.test"); err != nil || leaf.Subject.CommonName != "tlspilot temporary certificate" {
		t.Errorf("late.example.test: %v, want the temporary certificate", err)
	}
	if code, _, body := plainGet(t, h.http, "files.example.test", "/.well-known/acme-challenge/"+tok); code != 200 || body != ka {
		t.Errorf("challenge answer: %d %q", code, body)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCount(t, log, "config reloaded", 1)
	if code, body, _ := get(t, c, "https://files.example.test/"); code != 200 || body != "served\n" {
		t.Errorf("after reload: %d %q", code, body)
	}
	after := snapshot(t, h.dir)
	for p, v := range after {
		if before[p] != v {
			t.Errorf("serve created or changed %s", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("serve removed %s", p)
		}
	}
	if strings.Contains(log.String(), "level=ERROR") || strings.Contains(log.String(), "level=WARN msg=\"certificate files unavailable") {
		t.Errorf("errors logged:\n%s", log.String())
	}
}

// TestServeReloadMakesManager: a serve started with certificate-file
// sites only opens no storage (it does not even create it) and reports a
// status without certificates; a reload that adds a site needing ACME
// makes the Manager then: the storage is created, the site gets its
// certificate from Pebble, and the admin listener reports it, with its
// metrics.
func TestServeReloadMakesManager(t *testing.T) {
	e := newEnv(t)
	cert, key := opensslCert(t, e.dir, "files.example.test")
	www := filepath.Join(e.dir, "www")
	files := fmt.Sprintf("[[site]]\nnames = [\"files.example.test\"]\nroot = %q\ncert_file = %q\nkey_file = %q\n", www, cert, key)
	e.config(files)
	cmd, log := e.serveLogged()
	waitCount(t, log, "msg=serving", 1)
	if !strings.Contains(log.String(), "no ACME account is used, and the storage is opened only if a site needs it") {
		t.Errorf("no line saying the storage is not opened for ACME:\n%s", log.String())
	}
	storage := filepath.Join(e.dir, "storage")
	if _, err := os.Stat(storage); !os.IsNotExist(err) {
		t.Errorf("storage of a serve with certificate files only: %v, want none", err)
	}
	admin := &http.Client{Timeout: 10 * time.Second}
	code, body, _ := get(t, admin, "http://"+e.admin+"/status")
	if code != 200 || !strings.Contains(body, `"status": "OK"`) || !strings.Contains(body, `"certificates": []`) {
		t.Errorf("GET /status without a Manager: %d %s", code, body)
	}
	for _, path := range []string{"/", "/metrics", "/healthz"} {
		if code, body, _ := get(t, admin, "http://"+e.admin+path); code != 200 {
			t.Errorf("GET %s without a Manager: %d %.300q", path, code, body)
		}
	}

	e.config(files + fmt.Sprintf("\n[[site]]\nnames = [\"acme.example.test\"]\nroot = %q\n", www))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitIssued("acme.example.test", 60*time.Second)
	if _, err := os.Stat(filepath.Join(storage, "kek")); err != nil {
		t.Errorf("key-encryption key after the reload: %v", err)
	}
	code, body, _ = get(t, admin, "http://"+e.admin+"/status")
	if code != 200 || !strings.Contains(body, "acme.example.test") {
		t.Errorf("GET /status after the reload: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ = get(t, admin, "http://"+e.admin+"/metrics")
		if strings.Contains(body, `tlspilot_renewals_total{result="success"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics do not count the late Manager's certificate:\n%s", grepLines(body, "tlspilot_renewals"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServingHalfWithCerts: the set-up of issue 11 without a reloader or a
// signal between the two processes. serve starts first: its one site
// names the files certs will deploy (not there yet), its storage does not
// exist, and it serves challenge_dir. certs --once, with its own config
// and storage, obtains the certificate from Pebble validated through
// serve's HTTP listener and deploys it; serve presents it by itself. serve
// never creates its storage.
func TestServingHalfWithCerts(t *testing.T) {
	e := newEnv(t)
	acme := filepath.Join(e.dir, "acme-challenge")
	if err := os.Mkdir(acme, 0o755); err != nil {
		t.Fatal(err)
	}
	certsConf, fullchain, privkey := e.certsConfig("mail.example.test", acme)
	e.config(fmt.Sprintf("challenge_dir = %q\n\n[[site]]\nnames = [\"mail.example.test\"]\nroot = %q\ncert_file = %q\nkey_file = %q\n",
		acme, filepath.Join(e.dir, "www"), fullchain, privkey))
	_, log := e.serveLogged()
	waitCount(t, log, "msg=serving", 1)
	if _, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "mail.example.test", RootCAs: e.roots}); err == nil {
		t.Fatal("a trusted certificate before certs ran")
	}

	certsOnce(t, certsConf, 0)
	verifyPair(t, e, fullchain, privkey, "mail.example.test")
	e.waitIssued("mail.example.test", 10*time.Second)
	if code, body, _ := get(t, e.client(), "https://mail.example.test/"); code != 200 || body != "<h1>static site</h1>\n" {
		t.Errorf("GET https://mail.example.test/: %d %q", code, body)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "storage")); !os.IsNotExist(err) {
		t.Errorf("serve's storage: %v, want none", err)
	}
}

// TestCheckChallengeDir: a challenge directory the user serve runs as
// cannot search is refused by check and by serve at start, at the
// challenge_dir line, saying what is needed.
func TestCheckChallengeDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root, to run serve as another user")
	}
	h := newServingHalf(t)
	for _, d := range []string{filepath.Dir(h.dir), h.dir} { // nobody may pass through
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	acme := filepath.Join(h.dir, "acme-challenge")
	if err := os.Mkdir(acme, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, key := opensslCert(t, h.dir, "files.example.test")
	h.config(fmt.Sprintf("user = \"nobody\"\nchallenge_dir = %q\n", acme),
		fmt.Sprintf("[[site]]\nnames = [\"files.example.test\"]\ncert_file = %q\nkey_file = %q\n", cert, key))
	want := "tlspilot.toml:6: challenge_dir: "
	code, out, errOut := runCLI(t, "check", "--config", h.conf)
	if code != 1 || !strings.Contains(errOut, want+"permission denied: "+acme+" is mode -rwx------") || !strings.Contains(errOut, "needs search permission") {
		t.Errorf("check: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, errOut = serveOnce(t, h.conf)
	if code != 1 || !strings.Contains(errOut, want+"permission denied (serve runs as user \"nobody\"") {
		t.Errorf("serve: exit %d, stderr %q", code, errOut)
	}
	if err := os.Chmod(acme, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(key, 65534, 65534); err != nil { // serve reads it as nobody too
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "check", "--config", h.conf); code != 0 {
		t.Errorf("check with a searchable directory: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
