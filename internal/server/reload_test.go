package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadUnderLoad streams 2,000 requests at a site that stays while
// reloads remove one site and add another: none may fail.
func TestReloadUnderLoad(t *testing.T) {
	a, b, c := newTestCert(t, "a.test"), newTestCert(t, "b.test"), newTestCert(t, "c.test")
	root := staticSite(t)
	up := startUpstream(t, echoHeaders("c"))
	siteA := Site{Names: []string{"a.test"}, Root: root, HSTS: true, Cert: a.files()}
	siteB := Site{Names: []string{"b.test"}, Root: root, Cert: b.source()}
	siteC := Site{Names: []string{"c.test"}, Proxy: []string{"http://" + up.addr}, Cert: c.source()}
	ts := startServer(t, Options{Sites: []Site{siteA, siteB}}, a, b, c)

	if _, err := ts.handshake("c.test"); err == nil {
		t.Fatal("c.test served before it was added")
	}
	clients := []*http.Client{ts.client(t, false), ts.client(t, true), ts.newConnClient(t)}
	const total = 2000
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		cl := clients[i%len(clients)]
		wg.Go(func() {
			for sent.Add(1) <= total {
				if err := fetch(cl, "https://a.test/hello.txt", "hello, world\n"); err != nil {
					if failed.Add(1) <= 5 {
						t.Errorf("request to the staying site failed: %v", err)
					}
				}
			}
		})
	}
	reloads := 0
	for sent.Load() < total {
		next := []Site{siteA, siteC}
		if reloads%2 == 1 {
			next = []Site{siteB, siteA}
		}
		if err := ts.Reload(next); err != nil {
			t.Fatal(err)
		}
		reloads++
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	if err := ts.Reload([]Site{siteA, siteC}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests, %d reloads, %d failed", total, reloads+1, failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests to the staying site failed", failed.Load(), total)
	}
	if _, err := ts.handshake("b.test"); err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Errorf("removed site: handshake %v, want unrecognized name", err)
	}
	if err := fetch(ts.client(t, true), "https://c.test/", "host=c.test xff=127.0.0.1 xfp=https xfh=c.test path=/"); err != nil {
		t.Errorf("added site: %v", err)
	}
}

// newConnClient opens a new TLS connection (full handshake, no session
// resumption) for every request.
func (ts *testServer) newConnClient(t *testing.T) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, ts.httpsAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: ts.roots},
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func fetch(cl *http.Client, url, want string) error {
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != want {
		return &badResponse{resp.StatusCode, string(body)}
	}
	return nil
}

type badResponse struct {
	code int
	body string
}

func (e *badResponse) Error() string { return http.StatusText(e.code) + ": " + e.body }

func TestReloadBadKeepsOld(t *testing.T) {
	a := newTestCert(t, "a.test")
	root := staticSite(t)
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: a.source()}}}, a)
	err := ts.Reload([]Site{
		{Names: []string{"b.test"}, Root: root, Cert: a.source()},
		{Names: []string{"c.test"}, Root: root + "/missing", Cert: a.source()},
	})
	if err == nil || !strings.Contains(err.Error(), "site 1 (c.test)") {
		t.Fatalf("bad reload: %v", err)
	}
	if err := fetch(ts.client(t, false), "https://a.test/hello.txt", "hello, world\n"); err != nil {
		t.Errorf("old table after a bad reload: %v", err)
	}
	if _, err := ts.handshake("b.test"); err == nil {
		t.Error("a site of the refused table is served")
	}
}

// TestReloadKeepsRoot checks that a root shared by both tables stays
// open across the reload, and that a dropped one is closed eventually.
func TestReloadKeepsRoot(t *testing.T) {
	a := newTestCert(t, "a.test")
	root := staticSite(t)
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: a.source()}}}, a)
	before := ts.table.Load().roots
	if err := ts.Reload([]Site{{Names: []string{"a.test", "www.a.test"}, Root: root, Cert: a.source()}}); err != nil {
		t.Fatal(err)
	}
	after := ts.table.Load().roots
	if len(after) != 1 || len(before) != 1 {
		t.Fatalf("roots: %d before, %d after", len(before), len(after))
	}
	for p, d := range after {
		if before[p] != d {
			t.Error("the unchanged root was reopened")
		}
	}
}

// TestReloadInFlight removes a site while one of its requests is in
// flight: the request finishes, the next one is refused.
func TestReloadInFlight(t *testing.T) {
	release := make(chan struct{})
	slow := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	}))
	a, b := newTestCert(t, "a.test"), newTestCert(t, "b.test")
	siteA := Site{Names: []string{"a.test"}, Root: staticSite(t), Cert: a.source()}
	ts := startServer(t, Options{Sites: []Site{siteA,
		{Names: []string{"b.test"}, Proxy: []string{"http://" + slow.addr}, Cert: b.source()}}}, a, b)
	cl := ts.client(t, false)
	got := make(chan error, 1)
	go func() { got <- fetch(cl, "https://b.test/", "done") }()
	waitFor(t, func() bool { return slow.connCount() == 1 })
	if err := ts.Reload([]Site{siteA}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-got; err != nil {
		t.Errorf("in-flight request to the removed site: %v", err)
	}
	// The kept-alive connection now gets 421; new ones fail the handshake.
	resp, _ := get(t, cl, "https://b.test/")
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("next request on the old connection: %d, want 421", resp.StatusCode)
	}
	if _, err := ts.handshake("b.test"); err == nil {
		t.Error("removed site still completes handshakes")
	}
}
