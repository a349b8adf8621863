package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs the demo once: three sites served with certificates from
// the test CA, and curl commands printed for each.
func TestDemo(t *testing.T) {
	// The demo builds ./cmd/tlspilot from the repository root.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(wd, "..", ".."))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-check", "-dir", t.TempDir()}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, n := range siteNames() {
		if !strings.Contains(out.String(), "curl --resolve "+n+":") {
			t.Errorf("no curl command for %s in:\n%s", n, out.String())
		}
	}
}

// TestDemoCtrlC: while the demo serves, the redirect site keeps the HTTPS
// port; Ctrl-C reaching tlspilot serve before the demo (as it reaches the
// whole process group) ends the demo promptly; the temporary work
// directory, 14 MB with the binary, is removed.
func TestDemoCtrlC(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(wd, "..", ".."))
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, out) }()
	waitOutput(t, out, done, "Serving until Ctrl-C")

	port := regexp.MustCompile(`https://` + regexp.QuoteMeta(redirectSite) + `:(\d+)/`).FindStringSubmatch(out.String())
	if port == nil {
		t.Fatalf("no curl command for %s in:\n%s", redirectSite, out.String())
	}
	if got, want := redirectLocation(t, port[1]), "https://"+staticSite+":"+port[1]+"/x?y=1"; got != want {
		t.Errorf("redirect site: location %q, want %q", got, want)
	}

	// Ctrl-C: serve gets SIGINT first, the demo a moment later.
	pid := childPID(t, "tlspilot")
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo after Ctrl-C: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the demo hangs after Ctrl-C reached tlspilot serve first")
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "tlspilot-demo-*")); len(left) > 0 {
		t.Errorf("the demo left %v behind", left)
	}
}

// redirectLocation asks the redirect site for /x?y=1 and returns the
// Location of its answer.
func redirectLocation(t *testing.T, port string) string {
	t.Helper()
	c := &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the certificate is checked by run
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get("https://" + redirectSite + ":" + port + "/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Location")
}

// childPID returns the pid of this process's child named comm.
func childPID(t *testing.T, comm string) int {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open || s[open+1:end] != comm {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			return pid
		}
	}
	t.Fatalf("no child process %q", comm)
	return 0
}

// waitOutput waits until out contains s, failing if run ends first.
func waitOutput(t *testing.T, out *syncBuffer, done <-chan error, s string) {
	t.Helper()
	deadline := time.After(120 * time.Second)
	for !strings.Contains(out.String(), s) {
		select {
		case err := <-done:
			t.Fatalf("demo ended before %q: %v\n%s", s, err, out.String())
		case <-deadline:
			t.Fatalf("no %q after 120s:\n%s", s, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoCAOnly: -ca-only runs the test CA alone and prints a config
// that works as printed: `tlspilot certs --once` with its ca and ca_root
// and a standalone listener on the printed http-01 port obtains a
// certificate that chains to the printed root.
func TestDemoCAOnly(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(wd, "..", "..")
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-ca-only", "-dir", work}, out) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitOutput(t, out, done, "Running until Ctrl-C")
	text := out.String()
	ca := regexp.MustCompile(`(?m)^ca = "([^"]+)"`).FindStringSubmatch(text)
	caRoot := regexp.MustCompile(`(?m)^ca_root = "([^"]+)"`).FindStringSubmatch(text)
	port := regexp.MustCompile(`validates http-01 on port (\d+)`).FindStringSubmatch(text)
	if ca == nil || caRoot == nil || port == nil {
		t.Fatalf("output lacks ca, ca_root or the http-01 port:\n%s", text)
	}

	bin := filepath.Join(t.TempDir(), "tlspilot")
	build := exec.Command("go", "build", "-o", bin, "./cmd/tlspilot")
	build.Dir = repo
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	fullchain := filepath.Join(dir, "fullchain.pem")
	if err := os.WriteFile(conf, []byte(`email = "try@example.test"
ca = "`+ca[1]+`"
ca_root = "`+caRoot[1]+`"
agree_terms = true
storage = "`+filepath.Join(dir, "storage")+`"

[[certificate]]
names = ["try.example.test"]
standalone = "127.0.0.1:`+port[1]+`"
fullchain = "`+fullchain+`"
privkey = "`+filepath.Join(dir, "privkey.pem")+`"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	certs := exec.Command(bin, "certs", "--once", "--config", conf)
	if b, err := certs.CombinedOutput(); err != nil {
		t.Fatalf("certs --once against the printed config: %v\n%s", err, b)
	}
	rootPEM, err := os.ReadFile(filepath.Join(work, "ca-root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	chain, err := os.ReadFile(fullchain)
	if err != nil {
		t.Fatal(err)
	}
	verifyChain(t, chain, rootPEM, "try.example.test")
}

// verifyChain checks that the PEM chain's leaf is valid for name under
// the PEM roots, with the rest of the chain as intermediates.
func verifyChain(t *testing.T, chainPEM, rootsPEM []byte, name string) {
	t.Helper()
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootsPEM) {
		t.Fatal("no root in ca-root.pem")
	}
	var leaf *x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if leaf == nil {
			leaf = c
		} else {
			inter.AddCert(c)
		}
	}
	if leaf == nil {
		t.Fatal("no certificate in fullchain.pem")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("certificate from the test CA: %v", err)
	}
}
