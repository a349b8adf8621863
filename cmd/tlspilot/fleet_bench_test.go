package main

// BenchmarkFleet100 and BenchmarkFleet1000, which docs/benchmarks.md
// records (issue 13): simulated agents renewing against one `tlspilot
// issuer` process that obtains their certificates from Pebble with
// dns-01 through BIND. Their set-up runs only under -bench, in a child
// process of the test binary, as BenchmarkCluster100's does.

import (
	"bufio"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sync/errgroup"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// fleetBenchEnv makes TestFleetBenchHelper run when set to
// "<agents> <storage> <result file>", storage "dir" or "postgres".
const fleetBenchEnv = "TLSPILOT_BENCH_FLEET"

// fleetBenchLogsEnv, when set to a directory, keeps the issuer's log of
// each round there (issuer-AGENTS-STORAGE-roundK.log), for reading where the
// time went.
const fleetBenchLogsEnv = "TLSPILOT_BENCH_FLEET_LOGS"

// fleetRound is what one round of every agent asking for a certificate
// measured. The issuer process is new for each round.
type fleetRound struct {
	Seconds    float64  // from the agents' first requests until the last agent held its certificate
	P50, P99   float64  // agent latency, seconds: its first request to the answer with the certificate
	Max        float64  // the slowest agent's latency, seconds
	Requests   int      // certificate requests the agents sent (first ones and polls)
	Orders     int      // new orders Pebble answered 201 during the round
	Repeated   []string // names ordered more than once in the round, "name×orders"
	Updates    int64    // SOA serial increments of the zone until every agent was done: UPDATE messages that changed it
	UpdatesEnd int64    // the same once the issuer had removed every record (cleanup included)
	Presents   []int    // records of each "challenges for N identifiers presented in one update" line
	PresentMsg int      // UPDATE messages those presents took (rfc2136 sends at most 150 records a message)
	WaitLines  int      // "dns-01: waiting for K more records to show up in DNS" lines
	Settled    int      // "dns-01 records served by every authoritative server" lines: propagation waits ended
	CPU        float64  // issuer's user+system CPU seconds (/proc/PID/stat) when every agent was done
	HWMKiB     int64    // issuer's peak RSS (VmHWM of /proc/PID/status) then
	CPUExit    float64  // user+system CPU seconds from its rusage after it exited
	MaxRSSKiB  int64    // ru_maxrss after it exited
	Records    int      // challenge records presented (fewer than orders when Pebble reused an authorization)
	IssuerP50  float64  // the issuer's own latency, seconds: "certificate requested" to "issued certificate for HOST" in its log
	IssuerP99  float64
	CPUOf      map[string]float64 // CPU seconds during the round by process (processCPU): the issuer, pebble, named, and this one (agents, and the counting proxy in front of Pebble)
}

// fleetBenchResult is what one run of TestFleetBenchHelper reports.
type fleetBenchResult struct {
	Agents  int
	Storage string     // "dir" or "postgres"
	Enrol   float64    // seconds to enrol every agent (tokens in-process, then each agent over TLS)
	First   fleetRound // every agent obtaining its first certificate
	Renew   fleetRound // every agent renewing it with a new key
}

// BenchmarkFleet100 is BenchmarkFleet1000 with 100 agents, for a quick
// run (under a minute for both storages): -bench 'BenchmarkFleet100/'.
func BenchmarkFleet100(b *testing.B) { benchFleet(b, 100) }

// BenchmarkFleet1000 runs 1,000 simulated agents (goroutines of the test
// binary, each with its own client certificate and key) against one
// `tlspilot issuer` process, Pebble as a process and BIND on loopback,
// with the issuer's storage a directory (storage=dir) or a PostgreSQL
// database (storage=postgres, where the audit trail is its table). Every agent first obtains a certificate
// for its name (hostNNNN.example.test); the issuer is restarted, and
// every agent then renews at once with a new key and CSR, polling as the
// issuer's RetryAfter says. The metrics are those of the renewal round:
// s-to-renewed (wall time until the last agent held its new
// certificate), p50-s and p99-s (agent latency), issuer-cpu-s and
// issuer-peak-MiB (the new issuer process, read from /proc when the last
// agent was done), orders/cert (the goal is 1.00), dns-updates/cert
// (UPDATE messages that changed the zone, adding and removing records,
// counted by its SOA serial), prop-waits/batch (propagation waits ended
// over DNS updates presented). ns/op also counts the set-up and the first
// round.
func BenchmarkFleet1000(b *testing.B) { benchFleet(b, 1000) }

func benchFleet(b *testing.B, agents int) {
	for _, st := range []string{"dir", "postgres"} {
		b.Run("storage="+st, func(b *testing.B) { benchFleetStorage(b, agents, st) })
	}
}

func benchFleetStorage(b *testing.B, agents int, store string) {
	var sum fleetRound
	for b.Loop() {
		r := runFleetBench(b, agents, store)
		for _, x := range []struct {
			what string
			r    fleetRound
		}{{"first certificates", r.First}, {"renewals", r.Renew}} {
			b.Logf("%d agents, storage %s, %s: %s", agents, store, x.what, x.r.summary(agents))
		}
		b.Logf("enrolment of %d agents: %.1f s", agents, r.Enrol)
		sum.Seconds += r.Renew.Seconds
		sum.P50 += r.Renew.P50
		sum.P99 += r.Renew.P99
		sum.CPU += r.Renew.CPU
		sum.HWMKiB += r.Renew.HWMKiB
		sum.Orders += r.Renew.Orders
		sum.UpdatesEnd += r.Renew.UpdatesEnd
		sum.Settled += r.Renew.Settled
		sum.Presents = append(sum.Presents, len(r.Renew.Presents))
	}
	runs, n := float64(b.N), float64(b.N*agents)
	b.ReportMetric(sum.Seconds/runs, "s-to-renewed")
	b.ReportMetric(sum.P50/runs, "p50-s")
	b.ReportMetric(sum.P99/runs, "p99-s")
	b.ReportMetric(sum.CPU/runs, "issuer-cpu-s")
	b.ReportMetric(float64(sum.HWMKiB)/runs/1024, "issuer-peak-MiB")
	b.ReportMetric(float64(sum.Orders)/n, "orders/cert")
	b.ReportMetric(float64(sum.UpdatesEnd)/n, "dns-updates/cert")
	batches := 0
	for _, k := range sum.Presents {
		batches += k
	}
	b.ReportMetric(float64(sum.Settled)/float64(max(batches, 1)), "prop-waits/batch")
}

// summary is one line of what a round measured.
func (r fleetRound) summary(agents int) string {
	return fmt.Sprintf("%.1f s to all done, latency p50 %.1f s p99 %.1f s max %.1f s, %d requests; %d orders (%.3f/cert, more than one: %v); "+
		"%d UPDATE messages until all done, %d with cleanup (%.2f/cert); %d presents of %v records in %d messages; "+
		"%d 'waiting for K more' lines, %d propagation waits ended; issuer %.1f CPU s and VmHWM %.1f MiB at all done, %.1f CPU s and maxrss %.1f MiB at exit; "+
		"%d records presented; issuer's own latency p50 %.1f s p99 %.1f s; CPU seconds by process %v",
		r.Seconds, r.P50, r.P99, r.Max, r.Requests, r.Orders, float64(r.Orders)/float64(agents), r.Repeated,
		r.Updates, r.UpdatesEnd, float64(r.UpdatesEnd)/float64(agents), len(r.Presents), r.Presents, r.PresentMsg,
		r.WaitLines, r.Settled, r.CPU, float64(r.HWMKiB)/1024, r.CPUExit, float64(r.MaxRSSKiB)/1024,
		r.Records, r.IssuerP50, r.IssuerP99, cpuTable(r.CPUOf))
}

// cpuTable formats CPU seconds by process, most first.
func cpuTable(m map[string]float64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, v))
	}
	slices.SortFunc(parts, func(a, b string) int {
		fa, _ := strconv.ParseFloat(a[strings.LastIndexByte(a, ' ')+1:], 64)
		fb, _ := strconv.ParseFloat(b[strings.LastIndexByte(b, ' ')+1:], 64)
		return cmp.Compare(fb, fa)
	})
	return strings.Join(parts, ", ")
}

// runFleetBench runs TestFleetBenchHelper in a child process of the test
// binary and returns its result: testenv's servers take a *testing.T,
// which a benchmark does not have.
func runFleetBench(b *testing.B, agents int, store string) fleetBenchResult {
	b.Helper()
	out := filepath.Join(b.TempDir(), "result.json")
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestFleetBenchHelper$", "-test.count=1", "-test.timeout=40m", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d %s %s", fleetBenchEnv, agents, store, out))
	output, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%d agents: %v\n%s", agents, err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var r fleetBenchResult
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// TestFleetBenchHelper is one run of BenchmarkFleet100/1000; without the
// environment variable the benchmark sets, it returns at once (it is the
// benchmark's child process, not a test).
func TestFleetBenchHelper(t *testing.T) {
	spec := os.Getenv(fleetBenchEnv)
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	agents := 0
	if len(f) == 3 {
		agents, _ = strconv.Atoi(f[0])
	}
	if agents <= 0 || len(f) != 3 || f[1] != "dir" && f[1] != "postgres" {
		t.Fatalf("%s=%q: want \"<agents> dir|postgres <result file>\"", fleetBenchEnv, spec)
	}
	data, err := json.Marshal(benchFleetRun(t, agents, f[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f[2], data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fleetBench is the set-up of one run: BIND serving example.test, Pebble
// validating against it, and an issuer config solving dns-01 there.
type fleetBench struct {
	t       *testing.T
	e       *env
	b       *testenv.BIND
	addr    string // issuer_listen
	roots   *x509.CertPool
	agents  []*simAgent
	open    func() (storage.Storage, func()) // the issuer's storage, for enrolling in-process
	storage string                           // "dir" or "postgres"
}

// simAgent is one simulated agent: its host, name and client.
type simAgent struct {
	host, name string
	c          *fleet.Client
}

// benchFleetRun sets up the issuer, enrols the agents, and runs the two
// rounds, each against a new issuer process.
func benchFleetRun(t *testing.T, agents int, store string) fleetBenchResult {
	buildBinary(t)
	fb := newFleetBench(t, store)
	r := fleetBenchResult{Agents: agents, Storage: store}
	start := time.Now()
	fb.enrol(agents)
	r.Enrol = time.Since(start).Seconds()
	r.First = fb.round(1)
	r.Renew = fb.round(2)
	t.Logf("%+v", r)
	return r
}

// newFleetBench starts BIND and Pebble (and PostgreSQL for a "postgres"
// storage), writes the issuer's config, and runs tlspilot init (the
// fleet CA).
func newFleetBench(t *testing.T, store string) *fleetBench {
	t.Helper()
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	fb := &fleetBench{t: t, e: newEnvWith(t, testenv.PebbleOptions{DNSServer: b.Addr}), b: b, addr: freeAddr(t)}
	conf := fmt.Sprintf(`issuer_listen = %q
issuer_names = ["127.0.0.1"]
log_format = "json"

[dns]
provider = "rfc2136"
server = %q
tsig_key = %q
tsig_algorithm = %q
tsig_secret_file = %q
resolvers = [%q]
authoritative_port = %d
propagation_timeout = "2m"
`, fb.addr, b.Addr, b.KeyName, b.KeyAlgorithm, b.SecretFile(t), b.Addr, b.Port)
	fb.storage = store
	fb.openStorage(store, conf)
	mustRun(t, "init", "--config", fb.e.conf)
	caPEM, _ := mustRun(t, "issuer", "ca", "--config", fb.e.conf)
	fb.roots = x509.NewCertPool()
	if !fb.roots.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("issuer ca printed no certificate: %q", caPEM)
	}
	return fb
}

// openStorage writes the issuer's config (conf, with its storage a
// directory or a new PostgreSQL server's database) and sets fb.open.
func (fb *fleetBench) openStorage(kind, conf string) {
	t := fb.t
	if kind == "dir" {
		fb.e.config(conf)
		fb.open = func() (storage.Storage, func()) {
			st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(fb.e.dir, "storage")})
			if err != nil {
				t.Fatal(err)
			}
			return st, func() {}
		}
		return
	}
	pg := testenv.StartPostgres(t)
	pgConfig(t, fb.e, pg.URL, conf)
	fb.open = func() (storage.Storage, func()) {
		st, err := pgstore.New(t.Context(), pgstore.Options{URL: pg.URL})
		if err != nil {
			t.Fatal(err)
		}
		return st, st.Close
	}
}

// enrol makes n tokens in-process over the issuer's storage
// (what `issuer enroll` does, without n processes), then starts the
// issuer and has each agent enrol with its token over TLS, 32 at once.
func (fb *fleetBench) enrol(n int) {
	t := fb.t
	st, closeStore := fb.open()
	defer closeStore()
	reg, err := fleet.New(fleet.Options{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]string, n)
	fb.agents = make([]*simAgent, n)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		a := &simAgent{host: fmt.Sprintf("host%04d", i)}
		a.name = a.host + ".example.test"
		fb.agents[i] = a
		g.Go(func() error {
			en, err := reg.Enroll(t.Context(), a.host, []string{a.name}, 0)
			if err == nil {
				tokens[i] = en.Token
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	is := fb.startIssuer()
	defer is.stop(t)
	g.SetLimit(32)
	for i, a := range fb.agents {
		g.Go(func() error {
			c, err := fleet.NewClient(fleet.ClientOptions{Issuer: "https://" + fb.addr, Roots: fb.roots})
			if err != nil {
				return err
			}
			id, err := c.Enroll(t.Context(), tokens[i])
			if err != nil {
				return err
			}
			a.c, err = fleet.NewClient(fleet.ClientOptions{Issuer: "https://" + fb.addr, Roots: fb.roots, Identity: id})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("enrol: %v\n%s", err, is.out.String())
	}
}

// round starts a new issuer process, has every agent ask for a
// certificate with a new key at once, and measures until every agent
// has it and the issuer removed its records.
func (fb *fleetBench) round(k int) fleetRound {
	t := fb.t
	is := fb.startIssuer()
	ordersBefore := fb.e.p.Orders()
	serialBefore := fb.serial()
	latencies := make([]time.Duration, len(fb.agents))
	requests := make([]int, len(fb.agents))
	cpuBefore := processCPU()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	var g errgroup.Group
	start := time.Now()
	for i, a := range fb.agents {
		g.Go(func() error {
			var err error
			latencies[i], requests[i], err = a.obtain(ctx)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		is.stop(t)
		t.Fatalf("round %d: %v\nissuer log (end):\n%s", k, err, lastLines(is.out.String(), 40))
	}
	r := fleetRound{Seconds: time.Since(start).Seconds()}
	r.CPU, r.HWMKiB = is.usage(t)
	r.CPUOf = processCPU()
	for k, v := range cpuBefore {
		r.CPUOf[k] -= v
	}
	r.Orders = fb.e.p.Orders() - ordersBefore
	r.Updates = fb.serial() - serialBefore
	for _, a := range fb.agents {
		if n := fb.e.p.OrdersFor(a.name); n != k {
			r.Repeated = append(r.Repeated, fmt.Sprintf("%s×%d", a.name, n-k+1))
		}
	}
	slices.Sort(latencies)
	r.P50, r.P99 = latencyPercentile(latencies, 50), latencyPercentile(latencies, 99)
	r.Max = latencies[len(latencies)-1].Seconds()
	for _, n := range requests {
		r.Requests += n
	}
	fb.waitRecordsGone()
	r.UpdatesEnd = fb.serial() - serialBefore
	is.stop(t)
	r.CPUExit, r.MaxRSSKiB = is.rusage()
	is.readLog(t, &r)
	if dir := os.Getenv(fleetBenchLogsEnv); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("issuer-%d-%s-round%d.log", len(fb.agents), fb.storage, k)), []byte(is.out.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	return r
}

// obtain makes a new key and CSR for the agent's name, sends it, and
// sends it again after each RetryAfter until the issuer answers with the
// certificate. It returns the time from the first request to that answer
// and the requests sent.
func (a *simAgent) obtain(ctx context.Context) (time.Duration, int, error) {
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		return 0, 0, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: a.name}, DNSNames: []string{a.name}}, key)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	for n := 1; ; n++ {
		resp, err := a.c.Certificate(ctx, csr, false)
		if err != nil {
			return 0, n, fmt.Errorf("%s: %w", a.host, err)
		}
		switch resp.Status {
		case fleet.CertValid:
			d := time.Since(start)
			return d, n, a.check(resp.Fullchain, key)
		case fleet.CertFailed:
			return 0, n, fmt.Errorf("%s: failed: %s", a.host, resp.Error)
		}
		select {
		case <-time.After(time.Duration(max(resp.RetryAfter, 1)) * time.Second):
		case <-ctx.Done():
			return 0, n, fmt.Errorf("%s: still %s: %w", a.host, resp.Status, ctx.Err())
		}
	}
}

// check verifies that chain's leaf is for the agent's name and key.
func (a *simAgent) check(chain string, key crypto.Signer) error {
	b, _ := pem.Decode([]byte(chain))
	if b == nil {
		return fmt.Errorf("%s: no certificate in the answer", a.host)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", a.host, err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("%s: the certificate is not for the agent's key", a.host)
	}
	return leaf.VerifyHostname(a.name)
}

// processCPU returns the CPU seconds (user and system) used so far by
// this process ("bench") and by every process descending from it, by
// command name ("issuer", "pebble", "named", "postgres" for the server
// and its backends): utime and stime of /proc/PID/stat, in clock ticks
// of 1/100 s. A process that exited no longer counts.
func processCPU() map[string]float64 {
	out := map[string]float64{}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		out["bench"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	type proc struct {
		ppid, name string
		cpu        float64
	}
	procs := map[string]proc{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		open, end := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || end < open {
			continue
		}
		// After the command: state, ppid, ... utime and stime (fields 14, 15).
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		procs[filepath.Base(filepath.Dir(p))] = proc{ppid: f[1], name: string(b[open+1 : end]), cpu: float64(utime+stime) / 100}
	}
	self := strconv.Itoa(os.Getpid())
	descends := func(pid string) bool {
		for range 10 {
			p, ok := procs[pid]
			if !ok {
				return false
			}
			if p.ppid == self {
				return true
			}
			pid = p.ppid
		}
		return false
	}
	for pid, p := range procs {
		if !descends(pid) {
			continue
		}
		name := p.name
		switch {
		case strings.HasPrefix(name, "pebble"):
			name = "pebble" // pebble-VERSION-GOVERSION, cut to 15 bytes
		case name == "tlspilot":
			name = "issuer"
		}
		out[name] += p.cpu
	}
	return out
}

// latencyPercentile returns the p-th percentile of sorted, in seconds (nearest
// rank).
func latencyPercentile(sorted []time.Duration, p int) float64 {
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(i, 0)].Seconds()
}

// serial returns the SOA serial of example.test at BIND: it grows by one
// with each UPDATE message that changes the zone.
func (fb *fleetBench) serial() int64 {
	fb.t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeSOA)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(fb.t.Context(), m, fb.b.Addr)
	if err != nil {
		fb.t.Fatalf("SOA example.test: %v", err)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return int64(soa.Serial)
		}
	}
	fb.t.Fatalf("SOA example.test: no SOA in %v", r)
	return 0
}

// waitRecordsGone waits until BIND serves no challenge record of any
// agent: the issuer's clean-up is done.
func (fb *fleetBench) waitRecordsGone() {
	t := fb.t
	deadline := time.Now().Add(2 * time.Minute)
	for _, a := range fb.agents {
		for {
			txt, err := fb.b.TXT(t.Context(), "_acme-challenge."+a.name)
			if err == nil && len(txt) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("TXT records of %s left behind: %q %v", a.name, txt, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// benchIssuer is a running `tlspilot issuer` process.
type benchIssuer struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

// startIssuer starts `tlspilot issuer` on the bench's config and waits
// until it listens. The caller stops it.
func (fb *fleetBench) startIssuer() *benchIssuer {
	t := fb.t
	is := &benchIssuer{cmd: exec.Command(buildBinary(t), "issuer", "--config", fb.e.conf), out: &syncBuffer{}, exited: make(chan struct{})}
	is.cmd.Stdout, is.cmd.Stderr = is.out, is.out
	if err := is.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { is.err = is.cmd.Wait(); close(is.exited) }()
	t.Cleanup(func() { is.stop(t) })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fb.addr); err == nil {
			_ = c.Close()
			return is
		}
		select {
		case <-is.exited:
			t.Fatalf("issuer exited before listening: %v\n%s", is.err, is.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("issuer not listening on %s:\n%s", fb.addr, is.out.String())
		}
	}
}

// stop stops the issuer with SIGTERM and waits until it exited.
func (is *benchIssuer) stop(t *testing.T) {
	select {
	case <-is.exited:
		return
	default:
	}
	_ = is.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-is.exited:
		if is.err != nil {
			t.Errorf("issuer exited: %v\n%s", is.err, lastLines(is.out.String(), 40))
		}
	case <-time.After(30 * time.Second):
		_ = is.cmd.Process.Kill()
		<-is.exited
		t.Errorf("issuer did not stop on SIGTERM:\n%s", lastLines(is.out.String(), 40))
	}
}

// usage reads the running issuer's CPU seconds (utime + stime of
// /proc/PID/stat, in clock ticks of 1/100 s) and VmHWM (KiB).
func (is *benchIssuer) usage(t *testing.T) (cpu float64, hwmKiB int64) {
	t.Helper()
	pid := is.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's closing parenthesis start with the
	// state (field 3); utime and stime are fields 14 and 15.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwmKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return float64(utime+stime) / 100, hwmKiB
}

// rusage returns the exited issuer's CPU seconds and ru_maxrss (KiB).
func (is *benchIssuer) rusage() (cpu float64, maxRSSKiB int64) {
	ps := is.cmd.ProcessState
	if ps == nil {
		return 0, 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds(), ru.Maxrss
}

// readLog counts, in the issuer's JSON log, the DNS updates presented
// (and the UPDATE messages they took) and the propagation lines.
func (is *benchIssuer) readLog(t *testing.T, r *fleetRound) {
	t.Helper()
	requested := map[string]time.Time{}
	var took []time.Duration
	sc := bufio.NewScanner(strings.NewReader(is.out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Host    string    `json:"host"`
			Records int       `json:"records"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch {
		case line.Msg == "certificate requested":
			requested[line.Host] = line.Time
		case strings.HasPrefix(line.Msg, "issued certificate for "):
			if at, ok := requested[line.Host]; ok {
				took = append(took, line.Time.Sub(at))
			}
		case strings.HasSuffix(line.Msg, "presented in one update"):
			r.Presents = append(r.Presents, line.Records)
			r.Records += line.Records
			r.PresentMsg += (line.Records + 149) / 150
		case strings.HasPrefix(line.Msg, "dns-01: waiting for "): // the checker's, not the progress line
			r.WaitLines++
		case line.Msg == "dns-01 records served by every authoritative server":
			r.Settled++
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		t.Fatal(err)
	}
	if len(took) > 0 {
		slices.Sort(took)
		r.IssuerP50, r.IssuerP99 = latencyPercentile(took, 50), latencyPercentile(took, 99)
	}
}
