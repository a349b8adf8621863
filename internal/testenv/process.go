package testenv

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/tlspilot/tlspilot/internal/devca"
)

const (
	// pebbleModule is the module path of Pebble.
	pebbleModule = "github.com/letsencrypt/pebble/v2"
	// processStartTimeout bounds how long the pebble process may take to
	// serve its directory and management interface.
	processStartTimeout = 30 * time.Second
)

// StartPebbleProcess is StartPebble with Pebble running as a separate OS
// process, the pebble command of the Pebble version in go.mod. The first call
// builds it with the go command found in PATH (go test puts its own first)
// into a cache under os.TempDir(), keyed by the Pebble and Go versions, so
// later runs reuse it. Requests reach the process through a counting reverse
// proxy at DirectoryURL that keeps the Host header, so the URLs Pebble
// writes point at the proxy. The process is killed in t.Cleanup.
//
// Unlike StartPebble it does not change the environment, so it may be used
// in parallel tests (but see the caveat on Pebble.DNS).
func StartPebbleProcess(t *testing.T, opts PebbleOptions) *Pebble {
	t.Helper()
	bin := pebbleBinary(t)
	logw := newTestLog(t)
	p := newPebble(t, logw, opts.DNSServer)
	ports := freePorts(t, 2)
	apiURL := "https://127.0.0.1:" + strconv.Itoa(ports[0])
	p.mgmtURL = "https://127.0.0.1:" + strconv.Itoa(ports[1])
	config := writeConfig(t, p, opts, ports[0], ports[1])

	cmd := exec.Command(bin, "-config", config, "-dnsserver", p.DNSAddr)
	cmd.Env = append(os.Environ(), pebbleEnv(opts)...) // the last value of a key wins
	killWithParent(cmd)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed by Close; its output is in the log
		close(exited)
	}()
	p.closers = append(p.closers, func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	p.waitReady(t, exited, apiURL+"/dir", p.mgmtURL+managementRootPath)

	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}
	p.closers = append(p.closers, transport.CloseIdleConnections)
	p.serveAPI(reverseProxy(t, apiURL, transport, logw), logw)
	return p
}

// newPebble generates the TLS certificate of the process's listeners,
// starts the DNS server unless dnsServer names one, and picks the challenge
// ports. Close is registered with t.Cleanup.
func newPebble(t *testing.T, logw io.Writer, dnsServer string) *Pebble {
	t.Helper()
	cert, err := devca.NewServerCert()
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	ports := freePorts(t, 2)
	p := &Pebble{
		Roots:    cert.Roots,
		RootsPEM: cert.RootPEM,
		HTTPPort: ports[0],
		TLSPort:  ports[1],
		DNSAddr:  dnsServer,
		cert:     cert,
	}
	if dnsServer == "" {
		dns := startDNS(t, logw)
		p.DNSAddr, p.DNS = dns.Addr, dns.Srv
	}
	t.Cleanup(p.Close)
	return p
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := devca.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// serveAPI serves h behind the counting handler and sets DirectoryURL.
func (p *Pebble) serveAPI(h http.Handler, logw io.Writer) {
	p.rec = &recorder{next: h}
	p.DirectoryURL = p.startTLS(p.rec, logw).URL + wfe.DirectoryPath
}

// startTLS serves h over HTTPS with p's certificate on a new 127.0.0.1 port,
// until Close.
func (p *Pebble) startTLS(h http.Handler, logw io.Writer) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.cert.TLS}}
	srv.Config.ErrorLog = log.New(logw, "https ", log.Lmicroseconds)
	srv.StartTLS()
	p.closers = append(p.closers, srv.Close)
	return srv
}

// reverseProxy forwards to target, keeping the Host header: Pebble builds the
// URLs it returns from it and checks the JWS "url" against it.
func reverseProxy(t *testing.T, target string, transport http.RoundTripper, logw io.Writer) http.Handler {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("parse %q: %v", target, err)
	}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		Transport: transport,
		ErrorLog:  log.New(logw, "proxy ", log.Lmicroseconds),
	}
}

// waitReady waits until every URL answers 200 OK, failing the test if the
// process exits or processStartTimeout passes first.
func (p *Pebble) waitReady(t *testing.T, exited <-chan struct{}, urls ...string) {
	t.Helper()
	client := p.client()
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(processStartTimeout)
	for _, u := range urls {
		for {
			err := getOK(client, u)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pebble did not serve %s within %v: %v", u, processStartTimeout, err)
			}
			select {
			case <-exited:
				t.Fatalf("pebble exited before serving %s", u)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// getOK GETs u and checks for 200 OK.
func getOK(client *http.Client, u string) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

// writeConfig writes the pebble command's JSON configuration and its TLS
// certificate and key into a temporary directory and returns the
// configuration's path.
func writeConfig(t *testing.T, p *Pebble, opts PebbleOptions, apiPort, mgmtPort int) string {
	t.Helper()
	dir := t.TempDir()
	certFile := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	configFile := filepath.Join(dir, "pebble-config.json")
	config := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(apiPort),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"httpPort":                       p.HTTPPort,
		"tlsPort":                        p.TLSPort,
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"externalAccountBindingRequired": len(opts.EAB) > 0,
		"externalAccountMACKeys":         opts.EAB,
		"caaIdentities":                  []string{devca.CAAIdentity},
		"keyAlgorithm":                   devca.KeyAlgorithm,
		"profiles":                       profiles(opts),
		"retryAfter":                     map[string]int{"authz": 0, "order": opts.RetryAfterOrder},
	}}
	data, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatalf("marshal pebble config: %v", err)
	}
	for name, content := range map[string][]byte{certFile: p.cert.CertPEM, keyFile: p.cert.KeyPEM, configFile: data} {
		if err := os.WriteFile(name, content, 0o600); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	return configFile
}

// pebbleBinary returns the path of the pebble command, building it on the
// first call. The binary is cached under os.TempDir() with the Pebble and Go
// versions in its name; building into a fresh directory and renaming makes
// concurrent builds (parallel test binaries) safe.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build pebble: no go command in PATH: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-m", "-f", "{{.Version}}", pebbleModule).Output()
	if err != nil {
		t.Fatalf("build pebble: go list -m %s: %v", pebbleModule, err)
	}
	version := strings.TrimSpace(string(out))
	name := fileSafe(fmt.Sprintf("pebble-%s-%s-%s-%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH))
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	dir := filepath.Join(os.TempDir(), "tlspilot-testenv")
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("build pebble: %v", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		t.Fatalf("build pebble: %v", err)
	}
	defer os.RemoveAll(tmp)
	built := filepath.Join(tmp, name)
	build := exec.Command(goTool, "build", "-o", built, "-ldflags=-X main.version="+version, pebbleModule+"/cmd/pebble")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build pebble: %v\n%s", err, out)
	}
	if err := os.Rename(built, bin); err != nil {
		t.Fatalf("build pebble: %v", err)
	}
	return bin
}

// fileSafe replaces the characters of s that are awkward in file names.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
}
