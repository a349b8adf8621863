package tlspilot

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// The environment of a child process started by TestCrashResumesOrder.
const (
	crashChildEnv = "TLSPILOT_CRASH_CHILD" // "1" in a child
	crashCAEnv    = "TLSPILOT_CRASH_CA"    // directory URL
	crashRootsEnv = "TLSPILOT_CRASH_ROOTS" // file with the PEM roots of the CA's API
	crashDirEnv   = "TLSPILOT_CRASH_DIR"   // StorageDir
	crashPortEnv  = "TLSPILOT_CRASH_PORT"  // port on 127.0.0.1 to serve http-01 on
	crashNameEnv  = "TLSPILOT_CRASH_NAME"  // the name to obtain a certificate for
	crashLeaseEnv = "TLSPILOT_CRASH_LEASE" // LeaseTTL, if set
)

// crashPassHeader marks the requests a crashTrip sends to Pebble itself, so
// that it lets them through.
const crashPassHeader = "X-Tlspilot-Crash-Pass"

// crashCase is one point of an order at which the client dies.
type crashCase struct {
	name   string // subtest name and first label of the certificate's name
	prefix string // path prefix of the request at which the client dies
	// answered: the CA acts on the request and the client dies before it
	// reads the answer. Otherwise the client dies before the request
	// reaches the CA.
	answered bool
	// maxOrders is how many orders the CA may see in all. It is 2 where the
	// CA acted on something the client never learnt of: a new order it
	// never heard the URL of, or a challenge accepted while the process
	// serving its answer died (the validation may fail, the order with it).
	// Everywhere else the saved progress must be resumed: 1.
	maxOrders int
}

// crashCases lists the steps of an order, each killed before the CA sees
// the request and, where the CA changes state, after it acted on it. The
// authorization fetch and the download only read, so one case each does.
func crashCases() []crashCase {
	return []crashCase{
		{name: "neworder-lost", prefix: "/order-plz", maxOrders: 1},
		{name: "neworder-answered", prefix: "/order-plz", answered: true, maxOrders: 2},
		{name: "authz-lost", prefix: "/authZ/", maxOrders: 1},
		{name: "challenge-lost", prefix: "/chalZ/", maxOrders: 1},
		{name: "challenge-answered", prefix: "/chalZ/", answered: true, maxOrders: 2},
		{name: "finalize-lost", prefix: "/finalize-order/", maxOrders: 1},
		{name: "finalize-answered", prefix: "/finalize-order/", answered: true, maxOrders: 1},
		{name: "download-answered", prefix: "/certZ/", answered: true, maxOrders: 1},
	}
}

// TestCrashResumesOrder kills (SIGKILL) a process in the middle of an order,
// at every step, then starts another on the same storage: it must obtain
// the certificate, resuming the saved order rather than placing another.
func TestCrashResumesOrder(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, p.RootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range crashCases() {
		t.Run(c.name, func(t *testing.T) {
			name := c.name + ".example.test"
			dir := t.TempDir()
			env := []string{crashChildEnv + "=1", crashCAEnv + "=" + p.DirectoryURL, crashRootsEnv + "=" + roots,
				crashDirEnv + "=" + dir, crashPortEnv + "=" + strconv.Itoa(p.HTTPPort), crashNameEnv + "=" + name}
			before := p.Orders()
			// The first child's locks expire 2s after it dies; the second
			// keeps the default, so that a stall on a loaded machine
			// cannot cost it its lock in the middle of a request.
			killChildAt(t, p, c, slices.Concat(env, []string{crashLeaseEnv + "=2s"}))
			second := startCrashChild(t, env)
			if err := second.wait(2 * time.Minute); err != nil {
				t.Fatalf("second process on the same storage: %v", err)
			}
			if testing.Verbose() {
				t.Logf("output of the second child:\n%s", second.out.Bytes())
			}
			checkStored(t, p, dir, name)
			if got := p.Orders() - before; got > c.maxOrders {
				t.Errorf("the CA saw %d orders, want at most %d", got, c.maxOrders)
			}
		})
	}
}

// killChildAt starts a child and kills it with SIGKILL when its order
// reaches c.
func killChildAt(t *testing.T, p *testenv.Pebble, c crashCase, env []string) {
	t.Helper()
	tripped, released := make(chan struct{}, 1), make(chan struct{})
	defer close(released)
	trip := newCrashTrip(t, p, c, func(*http.Request) {
		tripped <- struct{}{}
		<-released
	})
	p.SetFault(trip.fault)
	defer p.SetFault(nil)
	first := startCrashChild(t, env)
	select {
	case <-tripped:
		first.kill() // while the request is held
	case <-first.exited:
		t.Fatalf("the child exited before it sent %s: %v", c.prefix, first.err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("the child sent no %s request within 2m", c.prefix)
	}
	var ee *exec.ExitError
	if !errors.As(first.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v", first.err)
	}
}

// checkStored checks, with a Manager that does not run, that the storage
// in dir holds a certificate for name that Pebble issued, and no order in
// progress.
func checkStored(t *testing.T, p *testenv.Pebble, dir, name string) {
	t.Helper()
	m, err := New(t.Context(), Config{CA: p.DirectoryURL, CARoots: p.Roots, StorageDir: dir, AgreeTerms: true,
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	st := m.Status()
	if len(st) != 1 || !st[0].Serving {
		t.Fatalf("no stored certificate is served: %+v", st)
	}
	verify(t, handshake(t, m, name, nil), p.IssuerRoots(t), name)
	if _, err := m.store.LoadProgress(t.Context(), st[0].ID); !certstore.IsNotExist(err) {
		t.Errorf("order progress left behind after the certificate was stored: %v", err)
	}
}

// TestCrashCancelResumesOrder stops a Manager at every step of an order by
// cancelling its context, then runs another Manager on the same storage:
// it must obtain the certificate, resuming the saved order. Only the first
// Manager serves challenges: the second one's answers reach it through the
// storage.
func TestCrashCancelResumesOrder(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	for _, c := range crashCases() {
		t.Run(c.name, func(t *testing.T) {
			name := "cancel-" + c.name + ".example.test"
			cfg := testConfig(t, p, nil)
			before := p.Orders()
			first, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			serveChallenges(t, p, first)
			cancelManagerAt(t, p, c, first, name)
			second, err := New(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := second.Manage(t.Context(), name); err != nil {
				t.Fatal(err)
			}
			runManager(t, second)
			waitServing(t, second, 2*time.Minute)
			checkStored(t, p, cfg.StorageDir, name)
			if got := p.Orders() - before; got > c.maxOrders {
				t.Errorf("the CA saw %d orders, want at most %d", got, c.maxOrders)
			}
		})
	}
}

// cancelManagerAt runs m for name and cancels its context when its order
// reaches c; it returns once m's Run has returned.
func cancelManagerAt(t *testing.T, p *testenv.Pebble, c crashCase, m *Manager, name string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var gone atomic.Bool
	stopped := make(chan struct{})
	trip := newCrashTrip(t, p, c, func(r *http.Request) {
		defer close(stopped)
		cancel()
		select { // the client closes its connection: it saw the cancellation
		case <-r.Context().Done():
			gone.Store(true)
		case <-time.After(time.Minute):
		}
	})
	p.SetFault(trip.fault)
	defer p.SetFault(nil)
	if err := m.Manage(ctx, name); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no %s request within 2m", c.prefix)
	}
	if !gone.Load() {
		t.Fatalf("the client did not drop its %s request when its context ended", c.prefix)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("Run did not return within 1m of its context's end")
	}
}

// runManager runs m until the test ends.
func runManager(t *testing.T, m *Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestSharedStorageNoDoubleOrders runs two Managers on one storage, both
// managing the same 20 certificates: the CA must see one order per
// certificate. Only the first Manager's handler answers http-01: the
// second one's answers reach it through the storage.
func TestSharedStorageNoDoubleOrders(t *testing.T) {
	const count = 20
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	evA, evB := &events{}, &events{}
	cfgA, cfgB := testConfig(t, p, evA), testConfig(t, p, evB)
	cfgB.StorageDir = cfgA.StorageDir
	var certs []Cert
	for i := range count {
		certs = append(certs, Cert{Names: []string{fmt.Sprintf("shared-%02d.example.test", i)}})
	}
	a, err := New(t.Context(), cfgA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(t.Context(), cfgB)
	if err != nil {
		t.Fatal(err)
	}
	serveChallenges(t, p, a)
	for _, m := range []*Manager{a, b} {
		if err := m.ManageCerts(t.Context(), certs...); err != nil {
			t.Fatal(err)
		}
		runManager(t, m)
	}
	waitServing(t, a, 3*time.Minute)
	waitServing(t, b, 3*time.Minute)
	if got := p.Orders(); got != count {
		t.Errorf("the CA saw %d orders for %d certificates, want one each", got, count)
	}
	t.Logf("obtained by A: %d, by B: %d; taken from storage by A: %d, by B: %d",
		len(evA.of(EventObtained)), len(evB.of(EventObtained)), len(evA.of(EventLoaded)), len(evB.of(EventLoaded)))
	for _, c := range certs {
		name := c.Names[0]
		if ca, cb := handshake(t, a, name, nil)[0], handshake(t, b, name, nil)[0]; !ca.Equal(cb) {
			t.Errorf("%s: the Managers serve different certificates (serials %v and %v)", name, ca.SerialNumber, cb.SerialNumber)
		}
	}
}

// TestCrashHelperProcess is not a test: it is the child process of
// TestCrashResumesOrder, and does nothing unless TLSPILOT_CRASH_CHILD=1.
// The child obtains a certificate for TLSPILOT_CRASH_NAME and exits 0 once
// it is served.
func TestCrashHelperProcess(t *testing.T) {
	if os.Getenv(crashChildEnv) != "1" {
		return
	}
	if err := runCrashChild(t); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "child: serving")
	os.Exit(0)
}

// runCrashChild runs a Manager configured from the environment, serving
// http-01 on Pebble's port, until its certificate is served.
func runCrashChild(t *testing.T) error {
	port, err := strconv.Atoi(os.Getenv(crashPortEnv))
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(os.Getenv(crashRootsEnv))
	if err != nil {
		return err
	}
	var lease time.Duration
	if v := os.Getenv(crashLeaseEnv); v != "" {
		if lease, err = time.ParseDuration(v); err != nil {
			return err
		}
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	ctx := context.Background()
	m, err := New(ctx, Config{CA: os.Getenv(crashCAEnv), CARoots: roots, StorageDir: os.Getenv(crashDirEnv),
		AgreeTerms: true, Email: "ops@example.test", LeaseTTL: lease, RetryMin: time.Second, RetryMax: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(listen(t, port)) }()
	if err := m.Manage(ctx, os.Getenv(crashNameEnv)); err != nil {
		return err
	}
	go func() { _ = m.Run(ctx) }()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st := m.Status(); len(st) == 1 && st[0].Serving {
			return nil
		}
	}
	return fmt.Errorf("no certificate within 2m: %+v", m.Status())
}

// crashChild is a running child process of TestCrashResumesOrder.
type crashChild struct {
	cmd    *exec.Cmd
	out    bytes.Buffer // stdout and stderr; read only after exited
	exited chan struct{}
	err    error // of Wait; read only after exited
}

// startCrashChild starts the test binary as a child with env added. It is
// killed at the end of the test, and its output logged if the test failed.
func startCrashChild(t *testing.T, env []string) *crashChild {
	t.Helper()
	c := &crashChild{exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.timeout=3m")
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("output of child %d:\n%s", c.cmd.Process.Pid, c.out.Bytes())
		}
	})
	return c
}

// kill kills the child with SIGKILL and waits until it is gone.
func (c *crashChild) kill() {
	_ = c.cmd.Process.Kill() // fails only if it has exited already
	<-c.exited
}

// wait waits for the child to exit and returns an error unless it exited 0.
func (c *crashChild) wait(timeout time.Duration) error {
	select {
	case <-c.exited:
		return c.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %v", timeout)
	}
}

// crashTrip is a Pebble fault that stops the client at the first request
// for a step: it calls stop with the request, which returns once the client
// is gone, then answers the request itself, so the client never gets a
// real answer. In an answered case it first passes the request to Pebble
// itself and stops the client only when Pebble accepted it (a refusal,
// such as badNonce, is handed back to the client, which retries).
type crashTrip struct {
	p      *testenv.Pebble
	c      crashCase
	stop   func(r *http.Request)
	client *http.Client
	fired  atomic.Bool
}

// newCrashTrip returns a crashTrip for c.
func newCrashTrip(t *testing.T, p *testenv.Pebble, c crashCase, stop func(r *http.Request)) *crashTrip {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &crashTrip{p: p, c: c, stop: stop, client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// Fired reports whether the client was stopped.
func (trip *crashTrip) Fired() bool { return trip.fired.Load() }

func (trip *crashTrip) fault(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(crashPassHeader) != "" || trip.fired.Load() || !strings.HasPrefix(r.URL.Path, trip.c.prefix) {
		return false
	}
	if !trip.c.answered {
		if trip.fired.CompareAndSwap(false, true) {
			trip.stop(r)
		}
		testenv.WriteProblem(w, http.StatusServiceUnavailable, "serverInternal", "the client died", 0)
		return true
	}
	resp, body, err := trip.forward(r)
	if err != nil {
		testenv.WriteProblem(w, http.StatusBadGateway, "serverInternal", err.Error(), 0)
		return true
	}
	if resp.StatusCode < 300 && trip.fired.CompareAndSwap(false, true) {
		trip.stop(r)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	return true
}

// forward sends r to Pebble, marked so that the fault lets it through, and
// returns the answer with its body.
func (trip *crashTrip) forward(r *http.Request) (*http.Response, []byte, error) {
	u, err := url.Parse(trip.p.DirectoryURL)
	if err != nil {
		return nil, nil, err
	}
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	req.Header.Set(crashPassHeader, "1")
	resp, err := trip.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}
