package tlspilot

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestCrashWhileCAValidates kills (SIGKILL) a process 200 ms after the CA
// accepted its http-01 challenge, while the CA is still validating: the
// CA's fetch of the answer is held for at least 4 s, and until the second
// process on the same storage has looked at the authorization. The second
// process must wait for the validation instead of asking for it again
// ("Cannot update challenge with status processing"), must keep the answer
// the CA is about to fetch, and must obtain the certificate from the one
// order.
func TestCrashWhileCAValidates(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	gate := p.GateHTTP01(t)
	roots := filepath.Join(t.TempDir(), "roots.pem")
	if err := os.WriteFile(roots, p.RootsPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	name, dir := "validating.example.test", t.TempDir()
	env := []string{crashChildEnv + "=1", crashCAEnv + "=" + p.DirectoryURL, crashRootsEnv + "=" + roots,
		crashDirEnv + "=" + dir, crashPortEnv + "=" + strconv.Itoa(gate.BackendPort), crashNameEnv + "=" + name}

	acceptedAt := killAfterAccept(t, p, append(env, crashLeaseEnv+"=2s"), 200*time.Millisecond)
	select {
	case <-gate.Held():
	case <-time.After(time.Minute):
		t.Fatal("the CA did not try to fetch the answer within 1m")
	}
	accepts := p.RequestsTo("/chalZ/")
	openOnAuthzLook(t, p, gate, acceptedAt.Add(4*time.Second), 2*time.Second)
	second := startCrashChild(t, env)
	if err := second.wait(2 * time.Minute); err != nil {
		t.Fatalf("second process on the same storage: %v", err)
	}
	checkStored(t, p, dir, name)
	if n := p.Orders(); n != 1 {
		t.Errorf("the CA saw %d orders, want 1", n)
	}
	if n := p.RequestsTo("/chalZ/") - accepts; n != 0 {
		t.Errorf("the second process asked the CA %d times to validate a challenge it was validating", n)
	}
	if bytes.Contains(second.out.Bytes(), []byte("Cannot update challenge")) {
		t.Errorf("the second process logged \"Cannot update challenge\":\n%s", second.out.Bytes())
	}
}

// killAfterAccept starts a child and kills it with SIGKILL delay after the
// CA accepted its first challenge, letting the CA's reply reach it. It
// returns when the CA accepted the challenge.
func killAfterAccept(t *testing.T, p *testenv.Pebble, env []string, delay time.Duration) time.Time {
	t.Helper()
	accepted := make(chan time.Time, 1)
	trip := newCrashTrip(t, p, crashCase{prefix: "/chalZ/", answered: true}, func(*http.Request) {
		accepted <- time.Now()
	})
	p.SetFault(trip.fault)
	defer p.SetFault(nil)
	first := startCrashChild(t, env)
	var at time.Time
	select {
	case at = <-accepted:
	case <-first.exited:
		t.Fatalf("the child exited before the CA accepted its challenge: %v", first.err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the child had no challenge accepted within 2m")
	}
	time.Sleep(time.Until(at.Add(delay)))
	first.kill()
	var ee *exec.ExitError
	if !errors.As(first.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v", first.err)
	}
	return at
}

// openOnAuthzLook opens gate once a client has fetched an authorization
// and had settle to act on what it saw, and not before notBefore.
func openOnAuthzLook(t *testing.T, p *testenv.Pebble, gate *testenv.HTTP01Gate, notBefore time.Time, settle time.Duration) {
	t.Helper()
	looked := make(chan struct{})
	var once sync.Once
	p.SetFault(func(_ http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/authZ/") {
			once.Do(func() { close(looked) })
		}
		return false
	})
	t.Cleanup(func() { p.SetFault(nil) })
	go func() {
		select {
		case <-looked:
		case <-time.After(2 * time.Minute):
		}
		time.Sleep(max(time.Until(notBefore), settle))
		gate.Open()
	}()
}
