package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// fleetEnv is an issuer's config, initialised, that obtains certificates
// with dns-01 from Pebble through BIND (zone example.test).
type fleetEnv struct {
	*env
	addr  string // issuer_listen
	b     *testenv.BIND
	roots *x509.CertPool // the fleet CA
}

func newFleetEnv(t *testing.T) *fleetEnv {
	t.Helper()
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	e := newEnvWith(t, testenv.PebbleOptions{DNSServer: b.Addr})
	f := &fleetEnv{env: e, addr: freeAddr(t), b: b}
	e.config(fmt.Sprintf(`issuer_listen = %q
issuer_names = ["127.0.0.1"]

[dns]
provider = "rfc2136"
server = %q
tsig_key = %q
tsig_algorithm = %q
tsig_secret_file = %q
resolvers = [%q]
authoritative_port = %d
propagation_timeout = "30s"
`, f.addr, b.Addr, b.KeyName, b.KeyAlgorithm, b.SecretFile(t), b.Addr, b.Port))
	mustRun(t, "init", "--config", e.conf)
	caPEM, _ := mustRun(t, "issuer", "ca", "--config", e.conf)
	f.roots = x509.NewCertPool()
	if !f.roots.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("issuer ca printed %q", caPEM)
	}
	write(t, filepath.Join(e.dir, "fleet-ca.pem"), caPEM)
	return f
}

// issuerProc is a `tlspilot issuer` process.
type issuerProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// start runs the issuer until the test ends (or kill) and waits until it
// listens.
func (f *fleetEnv) start(t *testing.T) *issuerProc {
	t.Helper()
	p := &issuerProc{cmd: exec.Command(buildBinary(t), "issuer", "--config", f.conf), out: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Errorf("issuer did not stop on SIGTERM:\n%s", p.out.String())
		}
		if t.Failed() {
			t.Logf("issuer log:\n%s", p.out.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", f.addr); err == nil {
			_ = c.Close()
			return p
		}
		select {
		case err := <-p.exited:
			t.Fatalf("issuer exited before listening: %v\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer not listening on %s:\n%s", f.addr, p.out.String())
		}
	}
}

// kill stops the issuer at once, as a crash would.
func (p *issuerProc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.exited <- nil // for the cleanup
}

// enrol makes a token for host with the binary and enrols a client with
// it; the policy is host's name and its wildcard.
func (f *fleetEnv) enrol(t *testing.T, host string) *fleet.Client {
	t.Helper()
	name := host + ".example.test"
	tok, _ := mustRun(t, "issuer", "enroll", "--config", f.conf, host, "--names", name+",*."+name)
	c, err := fleet.NewClient(fleet.ClientOptions{Issuer: "https://" + f.addr, Roots: f.roots})
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Enroll(t.Context(), strings.TrimSpace(tok))
	if err != nil {
		t.Fatal(err)
	}
	if c, err = fleet.NewClient(fleet.ClientOptions{Issuer: "https://" + f.addr, Roots: f.roots, Identity: id}); err != nil {
		t.Fatal(err)
	}
	return c
}

// agentCSR makes a key and a CSR for host's name and wildcard.
func agentCSR(t *testing.T, host string) []byte {
	t.Helper()
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	name := host + ".example.test"
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name, "*." + name}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// untilValid sends csr until the issuer's answer is valid, riding out
// an issuer that is down (connection refused) meanwhile.
func untilValid(ctx context.Context, c *fleet.Client, csr []byte) (*fleet.CertificateResponse, error) {
	var last error
	for {
		resp, err := c.Certificate(ctx, csr, false)
		switch {
		case err == nil && resp.Status == fleet.CertValid:
			return resp, nil
		case err == nil && resp.Status == fleet.CertFailed:
			return resp, fmt.Errorf("failed: %s", resp.Error)
		case err != nil:
			last = err
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		}
	}
}

// TestFleetIssuerKilledMidBatch: four agents ask at once; the issuer
// process is killed (SIGKILL) once every order has reached finalize, and
// started again. The agents, which kept asking with the same CSR, all
// get their certificates, and the CA saw one order per certificate (the
// issue allows one extra): the orders were resumed, not placed again.
func TestFleetIssuerKilledMidBatch(t *testing.T) {
	f := newFleetEnv(t)
	proc := f.start(t)
	const n = 4
	clients := make([]*fleet.Client, n)
	for i := range clients {
		clients[i] = f.enrol(t, fmt.Sprintf("crash%d", i))
	}
	var finalizes atomic.Int32
	held := make(chan struct{})
	f.p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/finalize-order/") {
			finalizes.Add(1)
			select {
			case <-held:
			case <-r.Context().Done():
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range clients {
		csr := agentCSR(t, fmt.Sprintf("crash%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = untilValid(ctx, c, csr)
		}()
	}
	for deadline := time.Now().Add(time.Minute); finalizes.Load() < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d orders reached finalize:\n%s", finalizes.Load(), n, proc.out.String())
		}
	}
	proc.kill(t)
	close(held)
	f.p.SetFault(nil)
	before := proc.out.String()
	if !strings.Contains(before, "challenges for") || strings.Contains(before, "issued certificate for") {
		t.Errorf("the issuer was not killed mid-batch:\n%s", before)
	}
	proc = f.start(t)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("agent crash%d: %v", i, err)
		}
	}
	if o := f.p.Orders(); o > 2*n {
		t.Errorf("the CA saw %d orders for %d certificates; at most one extra per certificate", o, n)
	} else {
		t.Logf("%d orders for %d certificates", o, n)
	}
	log := proc.out.String()
	for _, want := range []string{"resuming certificate work", "resuming saved order"} {
		if !strings.Contains(log, want) {
			t.Errorf("the restarted issuer's log lacks %q", want)
		}
	}
	if got := strings.Count(log, "issued certificate for crash"); got != n {
		t.Errorf("the restarted issuer issued %d certificates, want %d", got, n)
	}
}
