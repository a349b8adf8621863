package notify

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestHangingHookDoesNotDelayIssuance runs a real Manager against Pebble
// with a notifier of one worker. The hook of the first certificate hangs
// (with a child); a second certificate is then managed and obtained while
// it hangs. At its timeout the hook and its child are killed, and the
// second certificate's hook runs.
func TestHangingHookDoesNotDelayIssuance(t *testing.T) {
	const timeout = 15 * time.Second
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	dir := t.TempDir()
	hook := script(t, dir, "hook", `dir=$1; shift
echo "$*" >> "$dir/events"
if mkdir "$dir/hung" 2>/dev/null; then
  sleep 300 &
  echo $! > "$dir/hung/child"
  echo $$ > "$dir/hung/pid"
  touch "$dir/hung/ready"
  wait
fi
`)
	l := &logs{}
	n := newNotifier(t, Options{Command: []string{hook, dir}, Timeout: timeout, Workers: 1, Logger: l.logger()})
	// bNotified is closed once b's "obtained" has been handed to the
	// notifier: the certificate is served a moment before its event is
	// sent, and Close drops what comes after it.
	bNotified := make(chan struct{})
	onEvent := func(ev tlspilot.Event) {
		n.Notify(ev)
		if ev.Type == tlspilot.EventObtained && slices.Contains(ev.Names, "b.example.test") {
			close(bNotified)
		}
	}
	m := runManager(t, p, tlspilot.Config{
		CA: p.DirectoryURL, CARoots: p.Roots, Email: "ops@example.test", AgreeTerms: true,
		StorageDir: t.TempDir(), RetryMin: time.Second, RetryMax: 5 * time.Second, OnEvent: onEvent,
	})
	ctx := t.Context()
	if err := m.ManageCerts(ctx, tlspilot.Cert{Names: []string{"a.example.test"}}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(dir, "hung", "ready"), 60*time.Second)
	hungAt := time.Now()
	pid, child := pidIn(t, filepath.Join(dir, "hung", "pid")), pidIn(t, filepath.Join(dir, "hung", "child"))

	if err := m.ManageCerts(ctx, tlspilot.Cert{Names: []string{"b.example.test"}}); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, "b.example.test", timeout-2*time.Second)
	if !alive(pid) || !alive(child) || time.Since(hungAt) >= timeout {
		t.Fatalf("b.example.test was obtained only after the hook stopped hanging (%v)", time.Since(hungAt))
	}
	t.Logf("b.example.test obtained %v after a's hook began to hang", time.Since(hungAt).Round(time.Millisecond))
	select {
	case <-bNotified:
	case <-time.After(10 * time.Second):
		t.Fatal("b.example.test's obtained event never reached the notifier")
	}

	closeWithin(t, n, timeout+30*time.Second)
	waitDead(t, 5*time.Second, pid, child)
	events := strings.Split(strings.TrimSpace(waitFile(t, filepath.Join(dir, "events"), time.Second)), "\n")
	slices.Sort(events)
	if len(events) != 2 || !strings.HasPrefix(events[0], "obtained ") || !strings.HasSuffix(events[0], " a.example.test") ||
		!strings.HasPrefix(events[1], "obtained ") || !strings.HasSuffix(events[1], " b.example.test") {
		t.Errorf("events %q", events)
	}
	r := l.records(t, "notify command timed out")
	if len(r) != 1 || !strings.Contains(r[0]["cert"].(string), "a.example.test") || r[0]["event"] != "obtained" {
		t.Errorf("log:\n%s", l)
	}
}

// runManager creates a Manager for cfg, serves its http-01 answers on
// Pebble's validation port and runs it until the test ends.
func runManager(t *testing.T, p *testenv.Pebble, cfg tlspilot.Config) *tlspilot.Manager {
	t.Helper()
	m, err := tlspilot.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	l := listen(t, p.HTTPPort)
	hs := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = hs.Close()
	})
	return m
}

// listen binds 127.0.0.1:port, retrying briefly while an earlier test's
// listener is released.
func listen(t *testing.T, port int) net.Listener {
	t.Helper()
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return l
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("listen on port %d: %v", port, err)
	return nil
}

// waitServing waits until the certificate of name is CA-issued.
func waitServing(t *testing.T, m *tlspilot.Manager, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, s := range m.Status() {
			if s.Serving && slices.Contains(s.Names, name) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not obtained within %v: %+v", name, timeout, m.Status())
}
