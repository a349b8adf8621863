package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
)

// nginx is a Debian nginx started by the test, on loopback, with its own
// config and pid file: it serves the challenge directory on Pebble's
// http-01 port and HTTPS with the deployed files on another port.
type nginx struct {
	t        *testing.T
	cmd      *exec.Cmd
	conf     string
	errorLog string
	tls      string // 127.0.0.1:port
}

// startNginx writes a self-signed placeholder to fullchain and privkey
// (nginx needs a certificate to start, as a distribution's snakeoil),
// starts nginx in the foreground and stops it at cleanup.
func startNginx(t *testing.T, e *env, challengeDir, fullchain, privkey string) *nginx {
	t.Helper()
	dir := filepath.Join(e.dir, "nginx")
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	placeholder(t, fullchain, privkey)
	n := &nginx{t: t, conf: filepath.Join(dir, "nginx.conf"), errorLog: filepath.Join(dir, "error.log"), tls: freeAddr(t)}
	tmp := filepath.Join(dir, "tmp")
	write(t, n.conf, fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[2]s notice;
events { worker_connections 512; }
http {
	access_log off;
	client_body_temp_path %[3]s/body;
	proxy_temp_path %[3]s/proxy;
	fastcgi_temp_path %[3]s/fastcgi;
	uwsgi_temp_path %[3]s/uwsgi;
	scgi_temp_path %[3]s/scgi;
	server {
		listen %[4]s;
		location /.well-known/acme-challenge/ {
			alias %[5]s/;
			default_type text/plain;
		}
		location / { return 404; }
	}
	server {
		listen %[6]s ssl;
		ssl_certificate %[7]s;
		ssl_certificate_key %[8]s;
		location / { return 200 "hello from nginx\n"; }
	}
}
`, dir, n.errorLog, tmp, e.http, challengeDir, n.tls, fullchain, privkey))
	cmd := exec.Command("nginx", "-c", n.conf, "-e", n.errorLog)
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	n.cmd = cmd
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = out.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", n.tls, time.Second)
		if err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(n.errorLog)
			t.Fatalf("nginx does not listen on %s: %v\n%s", n.tls, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// placeholder writes a self-signed certificate and its key.
func placeholder(t *testing.T, certFile, keyFile string) {
	t.Helper()
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-subj", "/CN=placeholder", "-days", "1", "-keyout", keyFile, "-out", certFile).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
}

// reloads counts the reloads nginx logged.
func (n *nginx) reloads() int {
	b, _ := os.ReadFile(n.errorLog)
	return strings.Count(string(b), "(SIGHUP) received")
}

// serial returns the serial of the certificate nginx serves for name,
// verified against roots ("" and the error if it does not verify).
func (n *nginx) serial(name string, roots *x509.CertPool) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", n.tls, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// waitSerial waits until nginx serves the certificate with serial from
// its only worker: the workers of the configuration before the reload
// have finished, so no connection can reach them any more.
func (n *nginx) waitSerial(name, serial string, roots *x509.CertPool) {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := n.serial(name, roots)
		if got == serial && n.workers() == 1 {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nginx serves serial %q (%v), want %s", got, err, serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// certsEnv is a config with one [[certificate]] for nginx.
type certsEnv struct {
	*env
	challenges, live   string
	fullchain, privkey string
}

func newCertsEnv(t *testing.T) *certsEnv {
	t.Helper()
	e := newEnv(t)
	// nginx's workers run as nobody: they must reach the challenge files.
	for d := e.dir; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ce := &certsEnv{env: e, challenges: filepath.Join(e.dir, "acme-challenge"), live: filepath.Join(e.dir, "live", "nginx")}
	for _, d := range []string{ce.challenges, ce.live} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ce.fullchain, ce.privkey = filepath.Join(ce.live, "fullchain.pem"), filepath.Join(ce.live, "privkey.pem")
	return ce
}

// configure writes the config with the certificate's reload and extra
// top-level keys.
func (ce *certsEnv) configure(top, reload string) string {
	return ce.config(top + fmt.Sprintf(`
[[certificate]]
names = ["nginx.example.test"]
challenge_dir = %q
fullchain = %q
privkey = %q
reload = %s
`, ce.challenges, ce.fullchain, ce.privkey, reload))
}

// certsOnce runs `tlspilot certs --once` and checks its exit code.
func certsOnce(t *testing.T, conf string, want int) string {
	t.Helper()
	code, out, errOut := runBinary(t, "certs", "--once", "--config", conf)
	if code != want {
		t.Fatalf("certs --once: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, out, errOut)
	}
	t.Logf("certs --once (exit %d): %s", code, strings.SplitN(out, "\n", 2)[0])
	return out
}

// deployed returns the certificate's deploy state as status reports it.
func deployed(t *testing.T, conf string) (tlspilot.CertStatus, int) {
	t.Helper()
	r, code := status(t, statusSchema(t), conf)
	for _, c := range r.Certificates {
		if c.Managed {
			if c.Deploy == nil {
				t.Fatalf("status has no deploy state for %s", c.ID)
			}
			return c, code
		}
	}
	t.Fatalf("status reports no managed certificate: %+v", r)
	return tlspilot.CertStatus{}, 0
}

// TestCertsNginx: `certs --once` obtains a certificate from Pebble by
// http-01 through nginx (answers as files in the challenge directory),
// writes nginx's files and reloads it, and a client trusting only
// Pebble's root then gets the new certificate from nginx. Run again with
// nothing due it sends no request to the CA, writes nothing and does not
// reload. A forced renewal deployed under a steady request load swaps the
// certificate with no failed request.
func TestCertsNginx(t *testing.T) {
	ce := newCertsEnv(t)
	ng := startNginx(t, ce.env, ce.challenges, ce.fullchain, ce.privkey)
	conf := ce.configure("", fmt.Sprintf(`["nginx", "-c", %q, "-s", "reload"]`, ng.conf))

	out := certsOnce(t, conf, tlspilot.ExitOK)
	if !strings.HasPrefix(out, "OK: 1 valid") || !strings.Contains(out, "deploy deployed") {
		t.Errorf("certs --once printed:\n%s", out)
	}
	c, _ := deployed(t, conf)
	if c.Deploy.State != tlspilot.DeployDone || c.Deploy.Serial != c.Serial {
		t.Fatalf("deploy state %+v, certificate serial %s", c.Deploy, c.Serial)
	}
	ng.waitSerial("nginx.example.test", c.Serial, ce.roots)
	if _, err := tls.LoadX509KeyPair(ce.fullchain, ce.privkey); err != nil {
		t.Errorf("deployed files: %v", err)
	}
	if fi, _ := os.Stat(ce.privkey); fi.Mode().Perm() != 0o600 {
		t.Errorf("privkey mode %04o, want 0600", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(ce.challenges); len(ents) != 0 {
		t.Errorf("challenge directory holds %d files after validation, want none", len(ents))
	}

	requests, reloads, before := ce.p.Requests(), ng.reloads(), stat(t, ce.fullchain)
	certsOnce(t, conf, tlspilot.ExitOK)
	if got := ce.p.Requests(); got != requests {
		t.Errorf("certs --once with nothing due sent %d requests to the CA, want 0", got-requests)
	}
	if after := stat(t, ce.fullchain); after != before {
		t.Errorf("fullchain rewritten with nothing due: %v, then %v", before, after)
	}
	if got := ng.reloads(); got != reloads {
		t.Errorf("nginx reloaded %d times with nothing due, want 0", got-reloads)
	}
	t.Logf("nothing due: %d requests to the CA before and after, nginx reloads %d before and after", requests, reloads)

	stop, served, failed := load(t, ng, ce.roots)
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf); code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	certsOnce(t, conf, tlspilot.ExitOK)
	c2, _ := deployed(t, conf)
	if c2.Serial == c.Serial || c2.Deploy.Serial != c2.Serial {
		t.Fatalf("after the forced renewal: serial %s (was %s), deployed %s", c2.Serial, c.Serial, c2.Deploy.Serial)
	}
	ng.waitSerial("nginx.example.test", c2.Serial, ce.roots)
	time.Sleep(300 * time.Millisecond) // requests on the new certificate too
	stop()
	t.Logf("under load: %d requests served during the swap, %d failed", served.Load(), failed.Load())
	if failed.Load() != 0 || served.Load() < 20 {
		t.Errorf("%d requests failed, %d served; want 0 failed", failed.Load(), served.Load())
	}
	// The [[certificate]] is configured: clean leaves it (and the one it
	// replaced) alone.
	if code, out, errOut := runBinary(t, "clean", "--older-than", "1s", "--dry-run", "--config", conf); code != 0 || out != "nothing to remove\n" {
		t.Errorf("clean --dry-run: exit %d\n%s%s", code, out, errOut)
	}
}

// workers counts the processes whose parent is nginx's master.
func (n *nginx) workers() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	count := 0
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so cut after ")".
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(n.cmd.Process.Pid) {
			count++
		}
	}
	return count
}

// stat identifies a file's version: inode and modification time.
func stat(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("inode %d mtime %s", fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime())
}

// load sends requests to nginx over new connections (each a full
// handshake, verified against roots) from two workers, each pausing 5 ms
// between requests, until stop is called.
func load(t *testing.T, ng *nginx, roots *x509.CertPool) (stop func(), served, failed *atomic.Int64) {
	served, failed = new(atomic.Int64), new(atomic.Int64)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{ServerName: "nginx.example.test", RootCAs: roots}}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr sync.Once
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				resp, err := client.Get("https://" + ng.tls + "/")
				if err == nil {
					err = func() error {
						defer resp.Body.Close()
						if resp.StatusCode != 200 {
							return fmt.Errorf("status %d", resp.StatusCode)
						}
						return nil
					}()
				}
				if err != nil {
					failed.Add(1)
					firstErr.Do(func() { t.Logf("first failed request: %v", err) })
					continue
				}
				served.Add(1)
			}
		}()
	}
	return func() { close(done); wg.Wait() }, served, failed
}

// TestCertsReloadFailure: a reload that fails is reported (exit code,
// status, log, notification) and retried until it succeeds, by the next
// --once although the files no longer change, and by the daemon with
// backoff; it is never hidden.
func TestCertsReloadFailure(t *testing.T) {
	ce := newCertsEnv(t)
	// http-01 answers in the challenge directory, served here as nginx
	// would serve them.
	serveOn(t, ce.http, http.StripPrefix("/.well-known/acme-challenge/", http.FileServer(http.Dir(ce.challenges))))
	events, gate := filepath.Join(ce.dir, "events"), filepath.Join(ce.dir, "gate")
	for _, d := range []string{events, gate} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hook, reload := filepath.Join(ce.dir, "on-event"), filepath.Join(ce.dir, "reload")
	write(t, hook, `#!/bin/sh
dir=$1; shift
{ echo "$*"; env | grep '^TLSPILOT_' | sort; } > "$dir/.$$" && mv "$dir/.$$" "$dir/$1-$$"
`)
	write(t, reload, `#!/bin/sh
[ -e "$1/allow" ] || { echo "reload refused: no $1/allow" >&2; exit 1; }
echo ok >> "$1/reloads"
`)
	for _, f := range []string{hook, reload} {
		if err := os.Chmod(f, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := ce.configure(fmt.Sprintf("notify_command = [%q, %q]\n", hook, events), fmt.Sprintf("[%q, %q]", reload, gate))

	// Never deployed and the reload fails: CRITICAL, files in place.
	out := certsOnce(t, conf, tlspilot.ExitCritical)
	if !strings.HasPrefix(out, "CRITICAL: 1 valid, 1 deploy failing\n") || !strings.Contains(out, "reload refused: no "+gate+"/allow") {
		t.Errorf("certs --once printed:\n%s", out)
	}
	c, code := deployed(t, conf)
	if code != tlspilot.ExitCritical || c.Deploy.State != tlspilot.DeployFailing || c.Deploy.Attempts != 1 || c.Deploy.RetryAt.IsZero() {
		t.Errorf("status exit %d, deploy %+v", code, c.Deploy)
	}
	got := waitEventFile(t, events, "deploy-failed", 10*time.Second)
	if !strings.Contains(got, "TLSPILOT_ERROR=deploy "+c.ID+": reload ") || !strings.Contains(got, "reload refused") {
		t.Errorf("deploy-failed notification:\n%s", got)
	}
	if _, err := tls.LoadX509KeyPair(ce.fullchain, ce.privkey); err != nil {
		t.Errorf("files not in place: %v", err)
	}

	// The files no longer change, but the reload is owed: the next run
	// retries it, without asking the CA anything.
	write(t, filepath.Join(gate, "allow"), "")
	requests := ce.p.Requests()
	certsOnce(t, conf, tlspilot.ExitOK)
	if n := strings.Count(readFile(t, filepath.Join(gate, "reloads")), "ok"); n != 1 {
		t.Errorf("%d successful reloads, want 1", n)
	}
	if got := ce.p.Requests(); got != requests {
		t.Errorf("%d requests to the CA, want none", got-requests)
	}
	if c, code := deployed(t, conf); code != tlspilot.ExitOK || c.Deploy.State != tlspilot.DeployDone || c.Deploy.Serial != c.Serial {
		t.Errorf("status exit %d, deploy %+v", code, c.Deploy)
	}

	// The daemon, with a renewed certificate and a failing reload: a
	// WARNING while the previous certificate is still deployed, retried
	// with backoff until the reload is allowed again.
	if err := os.Remove(filepath.Join(gate, "allow")); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf); code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	cmd, log := ce.certsDaemon(conf)
	waitCount(t, log, "deploy failed", 1)
	if c, code := deployed(t, conf); code != tlspilot.ExitWarning || c.Deploy.State != tlspilot.DeployFailing || c.Deploy.Serial == c.Serial {
		t.Errorf("status exit %d, deploy %+v (serial %s)", code, c.Deploy, c.Serial)
	}
	write(t, filepath.Join(gate, "allow"), "")
	waitCount(t, log, "certificate deployed", 1)
	if n := strings.Count(readFile(t, filepath.Join(gate, "reloads")), "ok"); n != 2 {
		t.Errorf("%d successful reloads, want 2", n)
	}
	if c, code := deployed(t, conf); code != tlspilot.ExitOK || c.Deploy.State != tlspilot.DeployDone || c.Deploy.Serial != c.Serial {
		t.Errorf("status exit %d, deploy %+v", code, c.Deploy)
	}
	waitEventFile(t, events, "deployed", 10*time.Second)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCount(t, log, "SIGHUP ignored", 1)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("certs daemon after SIGTERM: %v", err)
	}
	t.Logf("daemon log:\n%s", grepLines(log.String(), "deploy"))
}

// certsDaemon starts `tlspilot certs` with its output in a buffer, and
// stops it at cleanup.
func (ce *certsEnv) certsDaemon(conf string) (*exec.Cmd, *syncBuffer) {
	ce.t.Helper()
	cmd := exec.Command(buildBinary(ce.t), "certs", "--config", conf)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		ce.t.Fatal(err)
	}
	ce.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if ce.t.Failed() {
			ce.t.Logf("tlspilot certs output:\n%s", out.String())
		}
	})
	return cmd, out
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCertsOnceUsage: exit codes when nothing can be read (UNKNOWN).
func TestCertsOnceUsage(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, "[[site]]\nnames = [\"a.example.test\"]\n")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "--once", "--config", filepath.Join(dir, "missing.toml")}, "missing.toml"},
		{[]string{"certs", "--once", "--config", conf}, "certificate: no [[certificate]] table"},
		{[]string{"certs", "--once", "--config", conf, "extra"}, `unexpected argument "extra"`},
		{[]string{"certs", "--bogus"}, "flag provided but not defined"},
	} {
		code, _, errOut := runBinary(t, tt.args...)
		if code != tlspilot.ExitUnknown || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 3 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestCertsDaemonNginx: the daemon obtains and deploys at start, and
// deploys a certificate that `tlspilot renew --force` stored, within
// the storage poll, to a running nginx under load, with no failed
// request.
func TestCertsDaemonNginx(t *testing.T) {
	ce := newCertsEnv(t)
	ng := startNginx(t, ce.env, ce.challenges, ce.fullchain, ce.privkey)
	conf := ce.configure("", fmt.Sprintf(`["nginx", "-c", %q, "-s", "reload"]`, ng.conf))
	cmd, log := ce.certsDaemon(conf)
	waitCount(t, log, "certificate deployed", 1)
	c, _ := deployed(t, conf)
	ng.waitSerial("nginx.example.test", c.Serial, ce.roots)
	checkCertsAdmin(t, ce.admin, c)

	stop, served, failed := load(t, ng, ce.roots)
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf); code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	waitCount(t, log, "certificate deployed", 2)
	c2, _ := deployed(t, conf)
	if c2.Serial == c.Serial || c2.Deploy.Serial != c2.Serial {
		t.Fatalf("after renew --force: serial %s (was %s), deployed %s", c2.Serial, c.Serial, c2.Deploy.Serial)
	}
	ng.waitSerial("nginx.example.test", c2.Serial, ce.roots)
	stop()
	t.Logf("under load: %d requests served during the swap, %d failed", served.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d requests failed", failed.Load())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("certs daemon after SIGTERM: %v", err)
	}
}

// TestDeployOptionsKeyTypes: a [[certificate]] with two key types
// deploys each to its own files, the key type before the extension.
func TestDeployOptionsKeyTypes(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, `[[certificate]]
names = ["dual.example.test"]
key_type = ["ecdsa-p256", "rsa2048"]
fullchain = "fullchain.pem"
privkey = "privkey.pem"
mode = "0640"
reload_signal = "hup"
pidfile = "/run/nginx.pid"
`)
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := deployedCerts(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || len(certs[0].Deployers) != 2 || certs[0].Deployers[tlspilot.RSA2048] == nil {
		t.Fatalf("certs: %+v", certs)
	}
	o := deployOptions(cfg.Certificates[0], "rsa2048", slog.New(slog.DiscardHandler))
	if o.Privkey != filepath.Join(dir, "privkey.rsa2048.pem") || o.Fullchain != filepath.Join(dir, "fullchain.rsa2048.pem") ||
		o.Mode != 0o640 || o.Signal != syscall.SIGHUP || o.PIDFile != "/run/nginx.pid" {
		t.Errorf("options: %+v", o)
	}
}

// checkCertsAdmin: the certs daemon of a file without sites answers on
// admin_listen (certs_admin_listen's default) with the status and
// metrics of the certificate c it keeps.
func checkCertsAdmin(t *testing.T, addr string, c tlspilot.CertStatus) {
	t.Helper()
	code, body, _ := get(t, http.DefaultClient, "http://"+addr+"/status")
	if code != http.StatusOK || !strings.Contains(body, `"serial": "`+c.Serial+`"`) && !strings.Contains(body, `"serial":"`+c.Serial+`"`) {
		t.Errorf("certs admin GET /status: %d, want 200 with serial %s:\n%s", code, c.Serial, body)
	}
	code, body, _ = get(t, http.DefaultClient, "http://"+addr+"/metrics")
	for _, want := range []string{`tlspilot_certificates{state="valid"} 1`, `tlspilot_certificate_not_after_seconds{cert="` + c.ID + `"`, `tlspilot_renewals_total{result="success"} 1`} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("certs admin GET /metrics: %d, want a line with %s", code, want)
		}
	}
}
