package server

import (
	"context"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/clientauth"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// BenchmarkFullHandshake is the server CPU of a full TLS 1.3 handshake
// without and with client authentication (issue 14's benchmark), measured
// as bench/peer-serve.sh measures it: parallel `openssl s_time -new`
// clients (a new TCP connection, no session offered, GET /small.txt,
// close), and the CPU (user + system) of this process, which only
// serves: the clients and the OCSP responder are other processes. With
// client_auth the site requires a certificate from an `openssl ca` CA and
// checks the client's for revocation with internal/clientauth over OCSP,
// the answer cached (the responder is stopped before the clients start,
// and revocation_unknown is deny, so a cache miss would refuse them).
//
// One iteration is one batch of HANDSHAKE_CLIENTS clients (default 16)
// for HANDSHAKE_SECONDS (default 5); run it with -benchtime=1x. It
// reports server-µs/handshake and handshakes/s (those of the clients,
// which share the machine's cores with the server).
func BenchmarkFullHandshake(b *testing.B) {
	clients, seconds := envInt("HANDSHAKE_CLIENTS", 16), envInt("HANDSHAKE_SECONDS", 5)
	ca := testenv.NewOpenSSLCA(b, testenv.OpenSSLCAOptions{Name: "bench clients"})
	alice := ca.Issue(testenv.IssueOptions{CommonName: "alice", Client: true, NoCRL: true})
	checker := cachedOCSPChecker(b, ca, alice.Cert)
	root := filepath.Join(b.TempDir(), "www")
	writeFile(b, filepath.Join(root, "small.txt"), strings.Repeat("x", 1024))
	cert := newTestCert(b, "bench.test")
	for _, c := range []struct {
		name string
		auth *ClientAuth
		args []string
	}{
		{"no_client_auth", nil, nil},
		{"client_auth_require_no_revocation", &ClientAuth{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1},
			[]string{"-cert", alice.CertFile, "-key", alice.KeyFile}},
		{"client_auth_require_ocsp_cached", &ClientAuth{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1, Verifier: checker},
			[]string{"-cert", alice.CertFile, "-key", alice.KeyFile}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ts := startServer(b, Options{Sites: []Site{{Names: []string{"bench.test"}, Default: true, Root: root,
				HTTPRedirect: true, Cert: cert.source(), ClientAuth: c.auth}}}, cert)
			var conns int
			var cpu, wall time.Duration
			for b.Loop() {
				n, d, w := sTime(b, ts.httpsAddr, clients, seconds, c.args)
				conns, cpu, wall = conns+n, cpu+d, wall+w
			}
			for _, r := range ts.ClientAuthRefusals() {
				if r.Count > 0 {
					b.Fatalf("%d clients refused (%s): the benchmark measured refusals", r.Count, r.Reason)
				}
			}
			if conns == 0 {
				b.Fatal("no connection made")
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(conns), "server-µs/handshake")
			b.ReportMetric(float64(conns)/wall.Seconds(), "handshakes/s")
		})
	}
}

// cachedOCSPChecker is a clientauth Checker asking the CA's OCSP
// responder about the leaf, with leaf's good answer in its cache and the
// responder stopped.
func cachedOCSPChecker(b *testing.B, ca *testenv.OpenSSLCA, leaf *x509.Certificate) *clientauth.Checker {
	b.Helper()
	ca.StartOCSP(testenv.OCSPResponderOptions{})
	c, err := clientauth.New(clientauth.Policy{CAs: []*x509.Certificate{ca.Cert}, VerifyDepth: 1,
		Revocation: clientauth.RevocationLeaf, OCSP: true, Unknown: clientauth.UnknownDeny}, clientauth.Options{Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Check(context.Background(), []*x509.Certificate{leaf, ca.Cert}); err != nil {
		b.Fatalf("warming the OCSP cache: %v", err)
	}
	ca.StopOCSP()
	return c
}

// sTime runs n `openssl s_time -new` clients against addr for seconds
// and returns the connections they made, the CPU this process used
// meanwhile, and the wall time.
func sTime(b *testing.B, addr string, n, seconds int, args []string) (int, time.Duration, time.Duration) {
	b.Helper()
	before, start := selfCPU(b), time.Now()
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			cmd := exec.Command("openssl", append([]string{"s_time", "-connect", addr, "-new", "-tls1_3",
				"-time", strconv.Itoa(seconds), "-www", "/small.txt"}, args...)...)
			out, err := cmd.CombinedOutput()
			m := sTimeConns.FindSubmatch(out)
			if err != nil || m == nil {
				b.Errorf("openssl s_time: %v\n%s", err, out)
				return
			}
			c, _ := strconv.Atoi(string(m[1]))
			mu.Lock()
			total += c
			mu.Unlock()
		})
	}
	wg.Wait()
	return total, selfCPU(b) - before, time.Since(start)
}

// sTimeConns finds the connection count in s_time's summary ("3366
// connections in 6 real seconds").
var sTimeConns = regexp.MustCompile(`(\d+) connections in \d+ real seconds`)

// selfCPU is the user and system CPU this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
