package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestReloadUnderLoad: while a client sends a bounded stream of requests,
// SIGHUP adds a site and removes another. The site that stays never fails
// a request; the added one gets its certificate; the removed one is no
// longer served.
func TestReloadUnderLoad(t *testing.T) {
	e := newEnv(t)
	www := filepath.Join(e.dir, "www")
	site := func(name string) string {
		return fmt.Sprintf("\n[[site]]\nnames = [%q]\nroot = %q\n", name, www)
	}
	e.config(site("stay.example.test") + site("leave.example.test"))
	cmd := e.serve()
	e.waitIssued("stay.example.test", 60*time.Second)
	e.waitIssued("leave.example.test", 60*time.Second)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client()
			if w%2 == 1 { // half the workers open a new connection per request
				c.Transport.(*http.Transport).DisableKeepAlives = true
			}
			for i := 0; i < 1500; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("https://stay.example.test/")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
						continue
					}
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	e.config(site("stay.example.test") + site("new.example.test"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitIssued("new.example.test", 60*time.Second)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests to the site that stayed failed; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests succeeded", ok.Load())
	}
	if resp, err := e.client().Get("https://leave.example.test/"); err == nil {
		resp.Body.Close()
		t.Error("the removed site is still served")
	}
	// The removed site's certificate stays in storage.
	if n := countFiles(t, filepath.Join(e.dir, "storage", "data", "certs"), "cert.json"); n != 3 {
		t.Errorf("%d stored certificates, want 3 (removed ones stay)", n)
	}

	// A bad config is refused and the running one keeps serving.
	write(t, e.conf, "this is = not [ toml")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	e.waitIssued("new.example.test", 5*time.Second)
	e.waitIssued("stay.example.test", 5*time.Second)
}

func countFiles(t *testing.T, dir, name string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			n++
		}
		return nil
	})
	return n
}

// TestKillDuringIssuance: serve is killed with SIGKILL while it obtains
// certificates, then restarted: every certificate is obtained, with at
// most one extra order per kill.
func TestKillDuringIssuance(t *testing.T) {
	e := newEnv(t)
	www := filepath.Join(e.dir, "www")
	var sites strings.Builder
	names := []string{"k1.example.test", "k2.example.test", "k3.example.test", "k4.example.test"}
	for _, n := range names {
		fmt.Fprintf(&sites, "\n[[site]]\nnames = [%q]\nroot = %q\n", n, www)
	}
	e.config(sites.String())
	const kills = 2
	for k := range kills {
		cmd := exec.Command(buildBinary(t), "serve", "--config", e.conf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill as soon as the CA has seen the k-th+1 new order of this run.
		deadline := time.Now().Add(30 * time.Second)
		before := e.p.RequestsTo("/order-plz")
		for e.p.RequestsTo("/order-plz") <= before+k && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	e.serve()
	for _, n := range names {
		e.waitIssued(n, 90*time.Second)
	}
	// Orders run concurrently, so a kill can catch one order of each
	// certificate in flight: each certificate costs at most one extra
	// order per kill.
	for _, n := range names {
		if got := e.p.OrdersFor(n); got < 1 || got > 1+kills {
			t.Errorf("%s: %d orders with %d kills", n, got, kills)
		}
	}
}
