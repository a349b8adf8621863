package main

// BenchmarkCluster100, which docs/benchmarks.md records (issue 12): 100
// names served by 3 serve nodes on one PostgreSQL against 1 node: wall
// time until every node serves all 100, orders per name, and database
// round trips per certificate. Its set-up (PostgreSQL, Pebble, the
// nodes) runs only under -bench, in a child process of the test binary.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterBenchEnv makes TestClusterBenchHelper run when set to
// "<nodes> <names> <result file>".
const clusterBenchEnv = "TLSPILOT_BENCH_CLUSTER"

// clusterBenchResult is what one run of TestClusterBenchHelper reports.
type clusterBenchResult struct {
	Seconds  float64          // from starting the nodes until every node serves every name
	Orders   int              // new-order requests at Pebble
	ARI      int              // renewal information requests at Pebble until every node had stopped
	Trips    int64            // round trips to PostgreSQL until every node served every name
	TripsEnd int64            // the same until every node had stopped
	Conns    int64            // connections to PostgreSQL until every node had stopped
	Xacts    int64            // xact_commit + xact_rollback of the database until every node had stopped
	Obtained []int            // "certificate obtained" lines in each node's log
	Repeated []string         // names ordered more than once, "name×orders"
	ByLabel  map[string]int64 // round trips until all served by what they did (tripLabels)
}

// BenchmarkCluster100 starts 1 or 3 `tlspilot serve` nodes together on a
// fresh PostgreSQL database, with the same 100 names each, and waits
// until every node serves every name with a certificate from Pebble.
// Read s-to-served, orders/name (the goal is 1.00), db-trips/cert (round
// trips counted by a proxy in front of PostgreSQL: each time a node
// speaks after the server did, up to all served) and db-xacts/cert
// (transactions of the database in pg_stat_database, up to the nodes'
// exit). ari/cert is the CA's renewal information requests (RFC 9773)
// per certificate until the nodes stopped (the goal is 1.00: the one
// made with the download, taken up by the other nodes from the
// storage). ns/op also counts starting PostgreSQL and Pebble.
func BenchmarkCluster100(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var sum clusterBenchResult
			for b.Loop() {
				r := runClusterBench(b, n, 100)
				b.Logf("%d nodes: %.2f s, %d orders, %d renewal information requests, %d round trips to all served (%d to exit, %d connections), %d transactions; obtained per node %v; ordered more than once: %v",
					n, r.Seconds, r.Orders, r.ARI, r.Trips, r.TripsEnd, r.Conns, r.Xacts, r.Obtained, r.Repeated)
				b.Logf("round trips per certificate until all served, by what they did:\n%s", tripTable(r.ByLabel, 100))
				sum.Seconds += r.Seconds
				sum.Orders += r.Orders
				sum.ARI += r.ARI
				sum.Trips += r.Trips
				sum.Xacts += r.Xacts
			}
			runs := float64(b.N)
			b.ReportMetric(sum.Seconds/runs, "s-to-served")
			b.ReportMetric(float64(sum.Orders)/runs/100, "orders/name")
			b.ReportMetric(float64(sum.ARI)/runs/100, "ari/cert")
			b.ReportMetric(float64(sum.Trips)/runs/100, "db-trips/cert")
			b.ReportMetric(float64(sum.Xacts)/runs/100, "db-xacts/cert")
		})
	}
}

// ariPathPebble is where Pebble serves renewal information.
const ariPathPebble = "/draft-ietf-acme-ari-03/renewalInfo/"

// tripTable lists round trips by label, divided by certs, most first:
// the labels that make up at least 0.5 per certificate, then the rest
// summed.
func tripTable(byLabel map[string]int64, certs int) string {
	labels := slices.Collect(maps.Keys(byLabel))
	slices.SortFunc(labels, func(a, b string) int { return cmp.Or(cmp.Compare(byLabel[b], byLabel[a]), strings.Compare(a, b)) })
	var sb strings.Builder
	var rest int64
	for _, l := range labels {
		if per := float64(byLabel[l]) / float64(certs); per >= 0.5 {
			fmt.Fprintf(&sb, "%7.2f  %s\n", per, l)
		} else {
			rest += byLabel[l]
		}
	}
	fmt.Fprintf(&sb, "%7.2f  everything else (start-up, schema, account, prepares, pings, …)\n", float64(rest)/float64(certs))
	return sb.String()
}

// runClusterBench runs TestClusterBenchHelper in a child process of the
// test binary and returns its result: the cluster helpers and testenv's
// Pebble take a *testing.T, which a benchmark does not have.
func runClusterBench(b *testing.B, nodes, names int) clusterBenchResult {
	b.Helper()
	out := filepath.Join(b.TempDir(), "result.json")
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestClusterBenchHelper$", "-test.count=1", "-test.timeout=20m", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %d %s", clusterBenchEnv, nodes, names, out))
	output, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%d nodes: %v\n%s", nodes, err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var r clusterBenchResult
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// TestClusterBenchHelper is one run of BenchmarkCluster100; without the
// environment variable the benchmark sets, it returns at once (it is the
// benchmark's child process, not a test).
func TestClusterBenchHelper(t *testing.T) {
	spec := os.Getenv(clusterBenchEnv)
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	var nodes, names int
	if len(f) == 3 {
		nodes, _ = strconv.Atoi(f[0])
		names, _ = strconv.Atoi(f[1])
	}
	if nodes <= 0 || names <= 0 {
		t.Fatalf("%s=%q: want \"<nodes> <names> <result file>\"", clusterBenchEnv, spec)
	}
	data, err := json.Marshal(benchCluster(t, nodes, names))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f[2], data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// benchCluster starts n nodes with count names on a fresh database,
// reached through a round-trip counter, and measures them until every
// node serves every name, then stops them and reads the database's
// transaction count.
func benchCluster(t *testing.T, n, count int) clusterBenchResult {
	buildBinary(t) // before the clock
	c := newCluster(t, n)
	statsURL := c.pg.URL
	u, err := url.Parse(c.pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	counter := startPGCounter(t, u.Host)
	u.Host = counter.addr
	c.pg.URL = u.String() // what configure writes as every node's storage
	_, xactsBefore := dbStats(t, statsURL, db)

	names := clusterNames(count)
	start := time.Now()
	c.start(names)
	r := clusterBenchResult{Seconds: waitEveryPair(c, names, start, 5*time.Minute).Seconds()}
	r.Trips, r.ByLabel = counter.trips.Load(), counter.labels()
	r.Orders = c.e.p.Orders()
	if _, missing := c.served(c.nodes, names); missing != "" {
		t.Fatalf("after every node served every name: %s", missing)
	}
	for _, name := range names {
		if k := c.e.p.OrdersFor(name); k != 1 {
			r.Repeated = append(r.Repeated, fmt.Sprintf("%s×%d", name, k))
		}
	}
	for _, nd := range c.nodes {
		r.Obtained = append(r.Obtained, strings.Count(nd.out.String(), "certificate obtained"))
	}
	stopNodes(t, c.nodes)
	r.ARI = c.e.p.RequestsTo(ariPathPebble)
	r.TripsEnd, r.Conns = counter.trips.Load(), counter.conns.Load()
	r.Xacts = idleXacts(t, statsURL, db) - xactsBefore
	t.Logf("%+v", r)
	return r
}

// waitEveryPair waits until every node serves every name with a
// certificate from the CA and returns the time from start to the
// handshake that found the last (node, name) pair served. Pairs found
// served are not asked again: a served certificate stays served.
func waitEveryPair(c *cluster, names []string, start time.Time, timeout time.Duration) time.Duration {
	c.t.Helper()
	type pair struct {
		nd   *node
		name string
	}
	var pending []pair
	for _, nd := range c.nodes {
		for _, name := range names {
			pending = append(pending, pair{nd, name})
		}
	}
	var last time.Duration
	for {
		var still []pair
		for _, p := range pending {
			if _, err := c.serial(p.nd, p.name); err != nil {
				still = append(still, p)
			} else {
				last = time.Since(start)
			}
		}
		if pending = still; len(pending) == 0 {
			return last
		}
		if time.Since(start) > timeout {
			c.t.Fatalf("%d (node, name) pairs not served after %v, first: node %d, %s", len(pending), timeout, pending[0].nd.i, pending[0].name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopNodes stops every node with SIGTERM and waits until each exited.
func stopNodes(t *testing.T, nodes []*node) {
	t.Helper()
	for _, nd := range nodes {
		_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, nd := range nodes {
		select {
		case <-nd.exited:
		case <-time.After(15 * time.Second):
			t.Fatalf("node %d still running 15 s after SIGTERM", nd.i)
		}
	}
}

// dbStats returns the number of backends connected to database db and
// its committed and rolled back transactions, read over a new
// connection (so a new statistics snapshot) to statsURL.
func dbStats(t *testing.T, statsURL, db string) (backends, xacts int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, statsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT numbackends, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1`, db).Scan(&backends, &xacts)
	if err != nil {
		t.Fatal(err)
	}
	return backends, xacts
}

// idleXacts waits until no backend is connected to db, so that every
// backend has flushed its statistics (a backend does when it exits), and
// returns db's transaction count.
func idleXacts(t *testing.T, statsURL, db string) int64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		backends, xacts := dbStats(t, statsURL, db)
		if backends == 0 {
			return xacts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends still connected to %s", backends, db)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pgCounter is a TCP proxy in front of PostgreSQL that counts round
// trips: on each connection, each time the client sends after the
// server has sent (or first, for the start-up message). Statements a
// client pipelines without waiting count once; so does a statement
// following a notification the server pushed.
type pgCounter struct {
	addr  string
	trips atomic.Int64
	conns atomic.Int64

	mu      sync.Mutex
	byLabel map[string]int64 // finished round trips by tripLabels' label
}

// startPGCounter serves a proxy to target on a free loopback port until
// the test ends.
func startPGCounter(t *testing.T, target string) *pgCounter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc := &pgCounter{addr: l.Addr().String()}
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			_ = c.Close()
		}
	})
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			open = append(open, client, server)
			mu.Unlock()
			pc.conns.Add(1)
			go pc.relay(client, server)
		}
	}()
	return pc
}

// relay passes bytes both ways between client and server, counting.
func (pc *pgCounter) relay(client, server net.Conn) {
	var serverSpoke atomic.Bool
	serverSpoke.Store(true)
	go pipe(client, server, func([]byte) { serverSpoke.Store(true) })
	var trips tripLabels
	pipe(server, client, func(p []byte) {
		if serverSpoke.Swap(false) {
			pc.trips.Add(1)
			pc.note(trips.next())
		}
		trips.feed(p)
	})
}

// note counts one finished round trip under label ("" for none).
func (pc *pgCounter) note(label string) {
	if label == "" {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.byLabel == nil {
		pc.byLabel = map[string]int64{}
	}
	pc.byLabel[label]++
}

// labels returns the round trips counted so far by label.
func (pc *pgCounter) labels() map[string]int64 {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return maps.Clone(pc.byLabel)
}

// pipe copies src to dst, calling onRead with what it read before
// passing it on (so the reply cannot overtake the count), and closes both
// when either side ends.
func pipe(dst, src net.Conn, onRead func([]byte)) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			onRead(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// tripLabels names a client's round trips by what it sends (PostgreSQL's
// frontend protocol): the statement it executes (Bind or Query), with the
// key it passes as $1 made general (certs/*/cert.json), else "prepare"
// and the statement (a Parse and Describe alone, as pgx sends the first
// time a connection uses a statement), else "start-up" or "other".
type tripLabels struct {
	buf     []byte
	started bool              // the start-up message was read
	stmts   map[string]string // prepared statement name to SQL
	label   string            // of the trip under way
	parse   string            // the SQL of a Parse in the trip under way
}

// next returns the label of the trip that ended and starts a new one.
func (tl *tripLabels) next() string {
	label := tl.label
	switch {
	case label != "":
	case tl.parse != "":
		label = "prepare " + tl.parse
	case tl.started:
		label = "other"
	}
	tl.label, tl.parse = "", ""
	return label
}

// feed reads the messages in p (which may end inside one).
func (tl *tripLabels) feed(p []byte) {
	tl.buf = append(tl.buf, p...)
	if !tl.started {
		if len(tl.buf) < 4 || len(tl.buf) < int(binary.BigEndian.Uint32(tl.buf)) {
			return
		}
		tl.buf = tl.buf[binary.BigEndian.Uint32(tl.buf):]
		tl.started, tl.label = true, "start-up"
	}
	for len(tl.buf) >= 5 {
		end := 1 + int(binary.BigEndian.Uint32(tl.buf[1:]))
		if len(tl.buf) < end {
			return
		}
		tl.message(tl.buf[0], tl.buf[5:end])
		tl.buf = tl.buf[end:]
	}
}

// message reads one message of type typ with body b.
func (tl *tripLabels) message(typ byte, b []byte) {
	switch typ {
	case 'Q':
		if tl.label == "" {
			tl.label = shortSQL(cstring(&b))
		}
	case 'P':
		name := cstring(&b)
		sql := shortSQL(cstring(&b))
		if tl.stmts == nil {
			tl.stmts = map[string]string{}
		}
		tl.stmts[name] = sql
		if tl.parse == "" {
			tl.parse = sql
		}
	case 'B':
		cstring(&b) // portal
		name := cstring(&b)
		if tl.label == "" {
			tl.label = tl.stmts[name] + firstKey(b)
		}
	}
}

// cstring returns the NUL-terminated string at the start of *b and
// advances *b past it.
func cstring(b *[]byte) string {
	i := bytes.IndexByte(*b, 0)
	if i < 0 {
		s := string(*b)
		*b = nil
		return s
	}
	s := string((*b)[:i])
	*b = (*b)[i+1:]
	return s
}

// shortSQL returns sql on one line, cut after its first 48 characters.
func shortSQL(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 48 {
		sql = sql[:48] + "…"
	}
	return sql
}

// firstKey returns " [KEY]" for the first parameter of a Bind body
// (after the portal and statement names) when it is a storage key or
// lock name in text, each part after the first made "*" but a file name
// at the end of three or more (certs/*/cert.json, accounts/*/*/key,
// issue/*); "" otherwise.
func firstKey(b []byte) string {
	if len(b) < 2 {
		return ""
	}
	nf := int(binary.BigEndian.Uint16(b))
	b = b[2+2*nf:]
	if len(b) < 6 || binary.BigEndian.Uint16(b) == 0 {
		return ""
	}
	n := int(int32(binary.BigEndian.Uint32(b[2:])))
	if n <= 0 || len(b) < 6+n {
		return ""
	}
	key := string(b[6 : 6+n])
	for _, r := range key {
		if r < 0x20 || r > 0x7e {
			return ""
		}
	}
	parts := strings.Split(key, "/")
	for i := 1; i < len(parts); i++ {
		if i < len(parts)-1 || len(parts) == 2 || !strings.Contains(parts[i], ".") && parts[i] != "key" {
			parts[i] = "*"
		}
	}
	return " [" + strings.Join(parts, "/") + "]"
}
