package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
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

	"github.com/jackc/pgx/v5"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// cluster is several `tlspilot serve` processes sharing one PostgreSQL
// storage and one KEK, each with its own ports. Only node 0 is reachable
// by the CA for http-01: Pebble's validation port is a proxy (caGate) to
// node 0's HTTP port.
type cluster struct {
	t     *testing.T
	e     *env
	pg    *testenv.Postgres
	kek   string
	gate  *caGate
	nodes []*node
}

// node is one serve process of a cluster.
type node struct {
	i                  int
	http, https, admin string
	conf               string
	cmd                *exec.Cmd
	out                *lockedBuffer
	exited             chan struct{}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newCluster prepares n nodes on one PostgreSQL and Pebble; none runs yet.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	e := newEnv(t)
	c := &cluster{t: t, e: e, pg: testenv.StartPostgres(t), kek: filepath.Join(e.dir, "kek")}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(c.kek, key, 0o400); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c.nodes = append(c.nodes, &node{i: i, http: freeAddr(t), https: freeAddr(t), admin: freeAddr(t),
			conf: filepath.Join(e.dir, fmt.Sprintf("node%d.toml", i))})
	}
	c.gate = startCAGate(t, "127.0.0.1:"+strconv.Itoa(e.p.HTTPPort), c.nodes[0].http)
	return c
}

// configure writes node nd's config with the given names, one site each.
func (c *cluster) configure(nd *node, names []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "ca = %q\nca_root = %q\nagree_terms = true\nemail = \"ops@example.test\"\n", c.e.p.DirectoryURL, filepath.Join(c.e.dir, "api-root.pem"))
	fmt.Fprintf(&b, "storage = %q\nkek_file = %q\n", c.pg.URL, c.kek)
	fmt.Fprintf(&b, "http_listen = %q\nhttps_listen = %q\nadmin_listen = %q\naccess_log = \"off\"\n", nd.http, nd.https, nd.admin)
	for _, n := range names {
		fmt.Fprintf(&b, "\n[[site]]\nnames = [%q]\nroot = %q\n", n, filepath.Join(c.e.dir, "www"))
	}
	write(c.t, nd.conf, b.String())
}

// start starts every node at once, each with names.
func (c *cluster) start(names []string) {
	c.t.Helper()
	for _, nd := range c.nodes {
		c.configure(nd, names)
	}
	for _, nd := range c.nodes {
		c.run(nd)
	}
}

// run starts nd's serve process, stopped at cleanup.
func (c *cluster) run(nd *node) {
	t := c.t
	t.Helper()
	nd.cmd = exec.Command(buildBinary(t), "serve", "--config", nd.conf)
	nd.out = &lockedBuffer{}
	nd.cmd.Stdout, nd.cmd.Stderr = nd.out, nd.out
	if err := nd.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nd.exited = make(chan struct{})
	go func() { _ = nd.cmd.Wait(); close(nd.exited) }()
	t.Cleanup(func() {
		_ = nd.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-nd.exited:
		case <-time.After(10 * time.Second):
			_ = nd.cmd.Process.Kill()
			<-nd.exited
		}
		if t.Failed() {
			t.Logf("node %d output:\n%s", nd.i, nd.out.String())
		}
	})
}

// serial returns the serial of the CA-issued certificate nd serves for
// name, or "" with the handshake's error.
func (c *cluster) serial(nd *node, name string) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", nd.https,
		&tls.Config{ServerName: name, RootCAs: c.e.roots})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}

// waitServed waits until every node in nodes serves every name with a
// certificate from Pebble, the same on every node, and returns the
// serials by name.
func (c *cluster) waitServed(nodes []*node, names []string, timeout time.Duration) map[string]string {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		serials, missing := c.served(nodes, names)
		if missing == "" {
			return serials
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("not served everywhere after %v: %s", timeout, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// served returns the serial every node serves for each name, and what is
// missing (a name not served with a CA certificate, or served with
// different ones), "" if nothing.
func (c *cluster) served(nodes []*node, names []string) (map[string]string, string) {
	serials := map[string]string{}
	for _, name := range names {
		for _, nd := range nodes {
			s, err := c.serial(nd, name)
			if err != nil {
				return nil, fmt.Sprintf("node %d, %s: %v", nd.i, name, err)
			}
			if prev, ok := serials[name]; ok && prev != s {
				return nil, fmt.Sprintf("%s: serial %s on node %d, %s elsewhere", name, s, nd.i, prev)
			}
			serials[name] = s
		}
	}
	return serials, ""
}

// waitNewSerial waits until every node in nodes serves name with a serial
// other than old, and returns how long that took and the new serial.
func (c *cluster) waitNewSerial(nodes []*node, name, old string, timeout time.Duration) (time.Duration, string) {
	c.t.Helper()
	start := time.Now()
	for {
		serials, missing := c.served(nodes, []string{name})
		if missing == "" && serials[name] != old {
			return time.Since(start), serials[name]
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("%s: not every node serves a new certificate after %v (old serial %s): %s", name, timeout, old, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caGate is the CA's only way to a node's HTTP port (Pebble's http-01
// port): it passes requests on to one node, and holds them while held.
type caGate struct {
	proxy    *httputil.ReverseProxy
	mu       sync.Mutex
	release  chan struct{} // nil: open
	held     chan struct{} // closed when a request is held
	heldOnce *sync.Once
	requests atomic.Int64
}

// startCAGate serves addr, passing requests to backend.
func startCAGate(t *testing.T, addr, backend string) *caGate {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: backend}
	g := &caGate{proxy: &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
		Transport: &http.Transport{DisableKeepAlives: true},
	}}
	serveOn(t, addr, g)
	t.Cleanup(g.open)
	return g
}

func (g *caGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.requests.Add(1)
	g.mu.Lock()
	release, held, once := g.release, g.held, g.heldOnce
	g.mu.Unlock()
	if release != nil {
		once.Do(func() { close(held) })
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	g.proxy.ServeHTTP(w, r)
}

// hold makes the gate hold requests from now on; the returned channel is
// closed when it holds one.
func (g *caGate) hold() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.release, g.held, g.heldOnce = make(chan struct{}), make(chan struct{}), &sync.Once{}
	return g.held
}

// open passes held and later requests on.
func (g *caGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

// lockHolder returns the pid that holds a live lock whose name starts
// with prefix in the storage's lock table, 0 if none does.
func (c *cluster) lockHolder(prefix string) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.pg.URL)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var owner string
	err = conn.QueryRow(ctx, `SELECT owner FROM tlspilot_locks WHERE starts_with(name, $1) AND expires > clock_timestamp()`, prefix).Scan(&owner)
	if err == pgx.ErrNoRows {
		return 0
	}
	if err != nil {
		c.t.Fatal(err)
	}
	parts := strings.Split(owner, ":") // host:pid:random
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// clusterNames returns n names.
func clusterNames(n int) []string {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("c%02d.example.test", i))
	}
	return names
}

// TestClusterServe: three serve processes on one PostgreSQL, with
// different ports, only node 0 reachable by the CA for http-01, are
// started together with the same 20 names.
//   - Each certificate is ordered once (exactly 20 orders), and every node
//     serves all 20 with the same certificate from the CA: the answers
//     presented by nodes 1 and 2 are served by node 0 from the storage.
//   - `tlspilot renew --force` of one name: every node serves the new
//     serial within 10 s (LISTEN/NOTIFY; the periodic check is 15 s).
//   - A 21st name added to node 1 alone (SIGHUP), which orders it while
//     the CA's validation request is held; node 1 is killed with SIGKILL
//     while it holds the certificate's lock (read from the lock table),
//     and the name is added to nodes 0 and 2: the certificate arrives on
//     both within the lease (30 s) plus a margin, with at most one extra
//     order, and both keep serving the 20 others meanwhile.
func TestClusterServe(t *testing.T) {
	c := newCluster(t, 3)
	names := clusterNames(20)
	start := time.Now()
	c.start(names)
	serials := c.waitServed(c.nodes, names, 120*time.Second)
	t.Logf("20 names served by 3 nodes after %v", time.Since(start).Round(time.Millisecond))
	if got := c.e.p.Orders(); got != 20 {
		t.Errorf("%d orders at the CA for 20 names on 3 nodes, want 20", got)
	}
	for i, nd := range c.nodes {
		t.Logf("node %d: %d certificates obtained", i, strings.Count(nd.out.String(), "certificate obtained"))
	}

	renewed := names[3]
	code, out, errOut := runBinary(t, "renew", "--force", "--config", c.nodes[1].conf, renewed)
	if code != 0 {
		t.Fatalf("renew --force: exit %d\n%s%s", code, out, errOut)
	}
	took, serial := c.waitNewSerial(c.nodes, renewed, serials[renewed], 10*time.Second)
	t.Logf("renewed %s: serial %s served by all 3 nodes %v after renew returned", renewed, serial, took.Round(time.Millisecond))

	c.killHolder(names)
}

// killHolder is the third part of TestClusterServe.
func (c *cluster) killHolder(names []string) {
	t := c.t
	late := "late.example.test"
	held := c.gate.hold()
	victim, others := c.nodes[1], []*node{c.nodes[0], c.nodes[2]}
	c.configure(victim, append(names, late))
	if err := victim.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("no validation request reached the CA's gate after node 1 was told to manage " + late)
	}
	if pid := c.lockHolder("issue/" + late); pid != victim.cmd.Process.Pid {
		t.Fatalf("the lock of %s is held by pid %d, want node 1's %d", late, pid, victim.cmd.Process.Pid)
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	killed := time.Now()
	t.Logf("node 1 killed while holding the lock of %s, its order at the CA validating (%d orders)", late, c.e.p.OrdersFor(late))
	for _, nd := range others {
		c.configure(nd, append(names, late))
		if err := nd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	c.gate.open()
	const lease = 30 * time.Second
	deadline := killed.Add(lease + 15*time.Second)
	for {
		if _, missing := c.served(others, []string{late}); missing == "" {
			break
		}
		if _, missing := c.served(others, names); missing != "" {
			t.Fatalf("while waiting for the lock of %s: %s", late, missing)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served by nodes 0 and 2 %v after node 1 was killed", late, time.Since(killed))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s served by nodes 0 and 2 %v after node 1 was killed (lease %v); %d orders for it",
		late, time.Since(killed).Round(time.Millisecond), lease, c.e.p.OrdersFor(late))
	if got := c.e.p.OrdersFor(late); got < 1 || got > 2 {
		t.Errorf("%d orders for %s, want 1 or 2", got, late)
	}
}

// storageUp returns nd's tlspilot_storage_up sample, "" if absent.
func storageUp(t *testing.T, nd *node) string {
	t.Helper()
	resp, err := http.Get("http://" + nd.admin + "/metrics")
	if err != nil {
		t.Fatalf("node %d: /metrics: %v", nd.i, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "tlspilot_storage_up "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// waitStorage waits until every node reports the storage up (or down)
// in its status document and its metrics, and returns how long it took.
func (c *cluster) waitStorage(up bool, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	want := map[bool]string{true: "1", false: "0"}[up]
	for _, nd := range c.nodes {
		for {
			r := adminStatus(c.t, nd.admin)
			if r.Storage != nil && r.Storage.Up == up && storageUp(c.t, nd) == want {
				break
			}
			if time.Since(start) > timeout {
				c.t.Fatalf("node %d: storage not reported up=%v after %v: status %+v, tlspilot_storage_up %q",
					nd.i, up, timeout, r.Storage, storageUp(c.t, nd))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// handshakes runs a client loop against every node and name until stop
// is closed, and returns the counts of good and failed handshakes.
func (c *cluster) handshakes(names []string, stop <-chan struct{}) (ok, failed *atomic.Int64, errs func() []string) {
	ok, failed = &atomic.Int64{}, &atomic.Int64{}
	var mu sync.Mutex
	var msgs []string
	for _, nd := range c.nodes {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := names[i%len(names)]
				if _, err := c.serial(nd, name); err != nil {
					failed.Add(1)
					mu.Lock()
					msgs = append(msgs, fmt.Sprintf("node %d, %s: %v", nd.i, name, err))
					mu.Unlock()
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	return ok, failed, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), msgs...)
	}
}

// TestClusterDatabaseOutage: three serve nodes on one PostgreSQL serve
// their certificates; the database is stopped for 30 s while a client
// handshakes with every node for every name without pause. No handshake
// fails; every node reports the storage down in /status and /metrics
// (tlspilot_storage_up 0) within seconds, and up again within seconds of
// the database's return on the same port; then a forced renewal succeeds
// and every node serves the new certificate within 10 s.
func TestClusterDatabaseOutage(t *testing.T) {
	c := newCluster(t, 3)
	names := clusterNames(3)
	c.start(names)
	serials := c.waitServed(c.nodes, names, 90*time.Second)
	c.waitStorage(true, 10*time.Second)

	stop := make(chan struct{})
	ok, failed, errs := c.handshakes(names, stop)
	c.pg.Stop()
	stopped := time.Now()
	t.Logf("every node reports the storage down %v after the database stopped", c.waitStorage(false, 5*time.Second).Round(time.Millisecond))
	time.Sleep(time.Until(stopped.Add(30 * time.Second)))
	c.pg.Start(t)
	t.Logf("every node reports the storage up %v after the database is back", c.waitStorage(true, 15*time.Second).Round(time.Millisecond))
	close(stop)
	t.Logf("%d handshakes during the outage, %d failed", ok.Load(), failed.Load())
	if n := failed.Load(); n > 0 {
		e := errs()
		t.Errorf("%d handshakes failed, first: %s", n, e[0])
	}
	if ok.Load() < 100 {
		t.Errorf("only %d handshakes: the client loop did not run", ok.Load())
	}
	for _, nd := range c.nodes {
		if r := adminStatus(t, nd.admin); r.Status != "OK" {
			t.Errorf("node %d after the outage: status %s (%s)", nd.i, r.Status, r.Error)
		}
		out := nd.out.String()
		if d, u := strings.Count(out, `msg="storage unreachable: serving`), strings.Count(out, `msg="storage reachable again"`); d != 1 || u != 1 {
			t.Errorf("node %d logged the storage unreachable %d times and reachable again %d times, want once each", nd.i, d, u)
		}
	}

	code, out, errOut := runBinary(t, "renew", "--force", "--config", c.nodes[2].conf, names[0])
	if code != 0 {
		t.Fatalf("renew --force after the outage: exit %d\n%s%s", code, out, errOut)
	}
	took, serial := c.waitNewSerial(c.nodes, names[0], serials[names[0]], 10*time.Second)
	t.Logf("renewed after the outage: serial %s served by all 3 nodes %v after renew returned", serial, took.Round(time.Millisecond))
}
