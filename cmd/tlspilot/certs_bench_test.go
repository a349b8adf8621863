package main

// Benchmarks of `tlspilot certs --once` that docs/benchmarks.md records:
// 1,000 certificates of which none is due (wall time, requests to the
// CA), and 100 due certificates renewed from Pebble against certbot
// renewing the same 100 names from the same Pebble. Their set-up (a
// Pebble process, hundreds of orders) runs only under -bench.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// certsBenchEnv makes TestCertsBenchHelper run when set to
// "<case> <count> <result file>", case being idle or certbot.
const certsBenchEnv = "TLSPILOT_BENCH_CERTS"

// certsBenchResult is what one run of TestCertsBenchHelper reports.
type certsBenchResult struct {
	Setup    float64 // seconds to obtain the certificates, both clients
	Seconds  float64 // wall time of `certs --once` (idle: the mean of the runs)
	CPU      float64 // user + system CPU seconds of that process
	Requests int     // requests that reached the CA during it (idle: all runs)
	Runs     int     // idle: `certs --once` runs timed
	// Certbot is `certbot renew` over the same names (certbot case).
	CertbotSeconds  float64
	CertbotCPU      float64
	CertbotRequests int
}

// BenchmarkCertsOnceIdle1000 measures `tlspilot certs --once` over 1,000
// certificates obtained from Pebble, none of them due: its wall time and
// the requests it sends to the CA (the goal is none). Read s/run and
// requests/run; ns/op also counts obtaining the 1,000.
func BenchmarkCertsOnceIdle1000(b *testing.B) {
	var sum certsBenchResult
	for b.Loop() {
		r := runCertsBench(b, "idle", 1000)
		sum.Seconds += r.Seconds
		sum.CPU += r.CPU
		sum.Requests += r.Requests
		sum.Runs += r.Runs
	}
	n := float64(b.N)
	b.ReportMetric(sum.Seconds/n, "s/run")
	b.ReportMetric(sum.CPU/n, "cpu-s/run")
	b.ReportMetric(float64(sum.Requests)/float64(sum.Runs), "requests/run")
}

// BenchmarkCertsRenew100VsCertbot measures `tlspilot certs --once`
// renewing 100 due certificates from Pebble, and `certbot renew`
// renewing certbot's own certificates for the same 100 names from the
// same Pebble. Read s/100-tlspilot and s/100-certbot.
func BenchmarkCertsRenew100VsCertbot(b *testing.B) {
	if _, err := exec.LookPath("certbot"); err != nil {
		b.Skip("no certbot in PATH")
	}
	var sum certsBenchResult
	for b.Loop() {
		r := runCertsBench(b, "certbot", 100)
		sum.Seconds += r.Seconds
		sum.CPU += r.CPU
		sum.Requests += r.Requests
		sum.CertbotSeconds += r.CertbotSeconds
		sum.CertbotCPU += r.CertbotCPU
		sum.CertbotRequests += r.CertbotRequests
	}
	n := float64(b.N)
	b.ReportMetric(sum.Seconds/n, "s/100-tlspilot")
	b.ReportMetric(sum.CPU/n, "cpu-s/100-tlspilot")
	b.ReportMetric(float64(sum.Requests)/n, "requests-tlspilot")
	b.ReportMetric(sum.CertbotSeconds/n, "s/100-certbot")
	b.ReportMetric(sum.CertbotCPU/n, "cpu-s/100-certbot")
	b.ReportMetric(float64(sum.CertbotRequests)/n, "requests-certbot")
}

// runCertsBench runs TestCertsBenchHelper in a child process of the test
// binary and returns its result: testenv's Pebble helpers take a
// *testing.T, which a benchmark does not have.
func runCertsBench(b *testing.B, name string, count int) certsBenchResult {
	b.Helper()
	out := filepath.Join(b.TempDir(), "result.json")
	cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestCertsBenchHelper$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", certsBenchEnv, name, count, out))
	if output, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s run: %v\n%s", name, err, output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var r certsBenchResult
	if err := json.Unmarshal(data, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// TestCertsBenchHelper is one run of a certs benchmark; without the
// environment variable the benchmark sets, it returns at once (it is the
// benchmark's child process, not a test).
func TestCertsBenchHelper(t *testing.T) {
	spec := os.Getenv(certsBenchEnv)
	if spec == "" {
		return
	}
	f := strings.Fields(spec)
	count := 0
	if len(f) == 3 {
		count, _ = strconv.Atoi(f[1])
	}
	if count <= 0 {
		t.Fatalf("%s=%q: want \"<idle|certbot> <count> <result file>\"", certsBenchEnv, spec)
	}
	var r certsBenchResult
	switch f[0] {
	case "idle":
		r = benchIdle(t, count)
	case "certbot":
		r = benchCertbot(t, count)
	default:
		t.Fatalf("%s: unknown case %q", certsBenchEnv, f[0])
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f[2], data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// idleRuns is how many `certs --once` runs the idle case times.
const idleRuns = 5

// benchIdle obtains count certificates with `certs --once`, then times
// idleRuns more runs with nothing due.
func benchIdle(t *testing.T, count int) certsBenchResult {
	e := newEnvWith(t, testenv.PebbleOptions{NonceReject: -1})
	conf := e.config(certificates(t, e.dir, count))
	start := time.Now()
	if _, out := timedCerts(t, conf); !strings.HasPrefix(out, fmt.Sprintf("OK: %d valid", count)) {
		t.Fatalf("certs --once obtaining %d: %s", count, firstLine(out))
	}
	r := certsBenchResult{Setup: time.Since(start).Seconds(), Runs: idleRuns}
	before := e.p.Requests()
	for range idleRuns {
		ps, out := timedCerts(t, conf)
		if !strings.HasPrefix(out, fmt.Sprintf("OK: %d valid", count)) {
			t.Fatalf("certs --once: %s", firstLine(out))
		}
		r.Seconds += ps.wall / idleRuns
		r.CPU += ps.cpu / idleRuns
	}
	r.Requests = e.p.Requests() - before
	t.Logf("idle %d: %+v", count, r)
	return r
}

// certbotValidity is the lifetime of the certificates of the certbot
// case: short, so that tlspilot's own renewal time (at most 90% into the
// lifetime) passes within minutes, without forcing anything; certbot
// (renew_before_expiry 30 days) finds every one due.
const certbotValidity = 3 * time.Minute

// benchCertbot obtains count certificates with certbot and the same
// names with `certs --once` from one Pebble, waits until tlspilot's are
// due, then times `certs --once` and `certbot renew`.
func benchCertbot(t *testing.T, count int) certsBenchResult {
	e := newEnvWith(t, testenv.PebbleOptions{NonceReject: -1, Validity: certbotValidity})
	conf := e.config(certificates(t, e.dir, count))
	cb := newCertbot(t, e)
	start := time.Now()
	for i := range count {
		cb.run(t, "certonly", "--standalone", "-d", benchName(i))
	}
	if _, out := timedCerts(t, conf); !strings.HasPrefix(out, fmt.Sprintf("OK: %d valid", count)) {
		t.Fatalf("certs --once obtaining %d: %s", count, firstLine(out))
	}
	r := certsBenchResult{Setup: time.Since(start).Seconds()}
	serials := waitDue(t, conf)

	before := e.p.Requests()
	ps, out := timedCerts(t, conf)
	r.Seconds, r.CPU, r.Requests = ps.wall, ps.cpu, e.p.Requests()-before
	after, _ := readSerials(t, conf)
	for id, s := range serials {
		if after[id] == s {
			t.Errorf("%s not renewed by certs --once (serial %s): %s", id, s, firstLine(out))
		}
	}

	before = e.p.Requests()
	ps = cb.run(t, "renew", "--no-random-sleep-on-renew")
	r.CertbotSeconds, r.CertbotCPU, r.CertbotRequests = ps.wall, ps.cpu, e.p.Requests()-before
	if n := cb.renewed(t); n != count {
		t.Errorf("certbot renew renewed %d certificates, want %d", n, count)
	}
	t.Logf("certbot case %d: %+v", count, r)
	return r
}

// benchName is the i-th name of the benchmarks.
func benchName(i int) string { return fmt.Sprintf("c%04d.bench.example.test", i) }

// certificates returns count [[certificate]] tables deploying fullchain
// and privkey under dir/live, and creates their directories.
func certificates(t *testing.T, dir string, count int) string {
	t.Helper()
	var sb strings.Builder
	for i := range count {
		live := filepath.Join(dir, "live", benchName(i))
		if err := os.MkdirAll(live, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "\n[[certificate]]\nnames = [%q]\nfullchain = %q\nprivkey = %q\n",
			benchName(i), filepath.Join(live, "fullchain.pem"), filepath.Join(live, "privkey.pem"))
	}
	return sb.String()
}

// procStats is the wall time and CPU time of a finished process.
type procStats struct{ wall, cpu float64 }

// timedCerts runs `certs --once` and returns its times and standard
// output, the status table; any exit code is accepted (the caller checks
// the table). Its log is in the test log.
func timedCerts(t *testing.T, conf string) (procStats, string) {
	t.Helper()
	var out, log bytes.Buffer
	ps := timed(t, exec.Command(buildBinary(t), "certs", "--once", "--config", conf), &out, &log)
	t.Logf("certs --once: %.2f s wall, %.2f s CPU; %s\n%s", ps.wall, ps.cpu, firstLine(out.String()), lastLines(log.String(), 5))
	return ps, out.String()
}

// timed runs cmd with its output in stdout and stderr and returns its
// times. It fails the test only when cmd cannot be started.
func timed(t *testing.T, cmd *exec.Cmd, stdout, stderr *bytes.Buffer) procStats {
	t.Helper()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
	}
	ps := procStats{wall: time.Since(start).Seconds()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		ps.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return ps
}

// waitDue waits until `status` says every managed certificate is due
// (its next renewal has passed) and returns their serials by id.
func waitDue(t *testing.T, conf string) map[string]string {
	t.Helper()
	for {
		serials, last := readSerials(t, conf)
		wait := time.Until(last)
		if wait <= 0 {
			return serials
		}
		t.Logf("waiting %v until every certificate is due", wait.Round(time.Second))
		time.Sleep(wait + time.Second)
	}
}

// readSerials returns the serials of the managed certificates by id, as
// `status` reports them, and the latest of their next renewals.
func readSerials(t *testing.T, conf string) (map[string]string, time.Time) {
	t.Helper()
	code, out, errOut := runBinary(t, "status", "--json", "--config", conf)
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json (exit %d): %v\n%s", code, err, errOut)
	}
	serials := make(map[string]string)
	var last time.Time
	for _, c := range r.Certificates {
		if c.Managed {
			serials[c.ID] = c.Serial
			if c.NextRenewal.After(last) {
				last = c.NextRenewal
			}
		}
	}
	return serials, last
}

// certbot runs Debian's certbot against the env's Pebble, with its
// directories in a temporary directory and http-01 answered by its
// standalone server on Pebble's http-01 port.
type certbot struct {
	dir  string
	args []string
	env  []string
}

func newCertbot(t *testing.T, e *env) *certbot {
	t.Helper()
	dir := filepath.Join(e.dir, "certbot")
	return &certbot{
		dir: dir,
		args: []string{"--non-interactive", "--agree-tos", "--register-unsafely-without-email",
			"--server", e.p.DirectoryURL, "--config-dir", filepath.Join(dir, "etc"), "--work-dir", filepath.Join(dir, "work"),
			"--logs-dir", filepath.Join(dir, "logs"), "--http-01-address", "127.0.0.1", "--http-01-port", strconv.Itoa(e.p.HTTPPort),
			"--key-type", "ecdsa", "--elliptic-curve", "secp256r1"},
		env: append(os.Environ(), "REQUESTS_CA_BUNDLE="+filepath.Join(e.dir, "api-root.pem")),
	}
}

// run runs certbot with sub and args, failing the test if it fails.
func (c *certbot) run(t *testing.T, sub string, args ...string) procStats {
	t.Helper()
	cmd := exec.Command("certbot", append(append([]string{sub}, c.args...), args...)...)
	cmd.Env = c.env
	var out bytes.Buffer
	ps := timed(t, cmd, &out, &out)
	if !cmd.ProcessState.Success() {
		t.Fatalf("certbot %s %v: %v\n%s", sub, args, cmd.ProcessState, out.String())
	}
	return ps
}

// renewed counts certbot's lineages holding a second certificate.
func (c *certbot) renewed(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(c.dir, "etc", "archive", "*", "cert2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(len(l)-n, 0):], "\n")
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
