package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// NamedHint is what to do when BIND's named is not installed.
const NamedHint = "install BIND 9: apt-get install -y bind9 bind9-utils dnsutils"

// bindStartTimeout bounds how long named may take to answer after it starts.
const bindStartTimeout = 15 * time.Second

// BINDZone is a zone served by a BIND instance.
type BINDZone struct {
	// Name is the zone's name, such as "example.test".
	Name string
	// Records are further resource records in zone-file syntax, relative
	// to the zone's origin or absolute, such as
	// "_acme-challenge.www CNAME www.acme.test.".
	Records []string
	// Updatable allows dynamic updates (RFC 2136) signed with the
	// instance's TSIG key.
	Updatable bool
	// NS holds the IP addresses of the zone's name servers: each gets an
	// NS record nsN.<zone> with an A or AAAA record. Default: the IP of
	// the instance serving the zone.
	NS []string
	// Primary, if set (host:port), makes the zone a secondary that
	// transfers from there. It accepts NOTIFY from anyone; see Notify.
	Primary string
}

// BINDOptions configures a BIND instance.
type BINDOptions struct {
	// Zones are the zones served with authority.
	Zones []BINDZone
	// IP is the address listened on: "127.0.0.1" (the default) or "::1".
	IP string
	// Port is the port listened on, UDP and TCP. Default: a free port.
	Port int
	// TSIGAlgorithm is the algorithm of the update key: "hmac-sha256"
	// (the default) or "hmac-sha512".
	TSIGAlgorithm string
	// Forward, if set (host:port), makes the instance a recursive resolver
	// that asks that server for every name under "test." and caches
	// nothing, as a CA's resolver in front of authoritative servers.
	Forward string
}

// BIND is a running BIND 9 named, started for one test with a
// configuration in a temporary directory. Its methods are safe for
// concurrent use and never call t.Fatal, so they may be called from any
// goroutine.
type BIND struct {
	// Addr is where it listens, host:port.
	Addr string
	// IP and Port are the parts of Addr.
	IP   string
	Port int
	// KeyName, KeyAlgorithm and KeySecret describe the TSIG key that may
	// update the zones marked Updatable: "tlspilot.", the algorithm
	// without trailing dot, and the base64 secret.
	KeyName, KeyAlgorithm, KeySecret string

	named   string // path of named
	dir     string
	version string // unique answer to version.bind, to recognise this instance
	zones   []string
	log     *testLog

	mu   sync.Mutex
	proc *namedProc // nil while stopped
}

// namedProc is one run of named.
type namedProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartBIND starts named on loopback with the zones of opts, waits until it
// serves all of them (secondaries transferred) and stops it in t.Cleanup.
// It fails the test, saying how to install it, if named is missing.
// named's log is shown if the test fails.
func StartBIND(t testing.TB, opts BINDOptions) *BIND {
	t.Helper()
	named := NamedPath(t)
	b := &BIND{
		IP: opts.IP, KeyName: "tlspilot.", KeyAlgorithm: opts.TSIGAlgorithm,
		named: named, dir: t.TempDir(), version: "tlspilot-test-" + randomHex(t, 8), log: &testLog{},
	}
	if b.IP == "" {
		b.IP = "127.0.0.1"
	}
	if b.KeyAlgorithm == "" {
		b.KeyAlgorithm = "hmac-sha256"
	}
	b.KeySecret = base64.StdEncoding.EncodeToString(randomBytes(t, 32))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("named log (%s):\n%s", b.Addr, b.log.String())
		}
	})
	t.Cleanup(b.Stop)
	var err error
	for range 3 {
		b.Port = opts.Port
		if b.Port == 0 {
			b.Port = FreeDNSPort(t, b.IP)
		}
		b.Addr = net.JoinHostPort(b.IP, strconv.Itoa(b.Port))
		if err = b.writeConfig(opts); err != nil {
			t.Fatalf("bind: %v", err)
		}
		if err = b.Start(); err == nil || opts.Port != 0 {
			break
		}
	}
	if err != nil {
		t.Fatalf("bind: %v", err)
	}
	return b
}

// NamedPath returns the path of BIND's named, failing the test with
// NamedHint if it is not installed.
func NamedPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("named"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/named", "/usr/local/sbin/named"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("named (BIND 9) not found in PATH nor /usr/sbin: %s", NamedHint)
	return ""
}

// Start starts named again after Stop, with the same configuration and
// data (dynamic updates included), and waits until it serves its zones.
func (b *BIND) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.proc != nil {
		return nil
	}
	cmd := exec.Command(b.named, "-g", "-n", "1", "-c", filepath.Join(b.dir, "named.conf"))
	cmd.Dir = b.dir
	cmd.Stdout, cmd.Stderr = b.log, b.log
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start named: %w", err)
	}
	p := &namedProc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // stopped by Stop; its output is in the log
		close(p.exited)
	}()
	b.proc = p
	if err := b.waitReady(p); err != nil {
		b.stopLocked()
		return err
	}
	return nil
}

// Stop kills named, as a crash or an outage would, and waits until it
// exited. Updates it acknowledged are in its journal and survive. Stop on
// a stopped instance does nothing.
func (b *BIND) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
}

func (b *BIND) stopLocked() {
	p := b.proc
	if p == nil {
		return
	}
	b.proc = nil
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitReady waits until named answers version.bind with its own token over
// UDP and TCP and serves every zone with authority.
func (b *BIND) waitReady(p *namedProc) error {
	ctx, cancel := context.WithTimeout(context.Background(), bindStartTimeout)
	defer cancel()
	ready := func() error {
		for _, network := range []string{"udp", "tcp"} {
			if err := b.checkVersion(ctx, network); err != nil {
				return err
			}
		}
		for _, z := range b.zones {
			if err := b.checkZone(ctx, z); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("named on %s exited at start: %v", b.Addr, tail(b.log.String(), 2000))
		case <-ctx.Done():
			return fmt.Errorf("named on %s not ready within %v: %v", b.Addr, bindStartTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *BIND) checkVersion(ctx context.Context, network string) error {
	m := new(dns.Msg)
	m.SetQuestion("version.bind.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	r, err := b.exchange(ctx, network, m)
	if err != nil {
		return err
	}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == b.version {
			return nil
		}
	}
	return fmt.Errorf("%s %s: version.bind is not %q (another server on this port?)", network, b.Addr, b.version)
}

func (b *BIND) checkZone(ctx context.Context, zone string) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	r, err := b.exchange(ctx, "udp", m)
	if err != nil {
		return err
	}
	if !r.Authoritative || len(r.Answer) == 0 {
		return fmt.Errorf("%s does not serve zone %s yet (%s)", b.Addr, zone, dns.RcodeToString[r.Rcode])
	}
	return nil
}

func (b *BIND) exchange(ctx context.Context, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: time.Second}
	r, _, err := c.ExchangeContext(ctx, m, b.Addr)
	return r, err
}

// TXT returns the TXT values at name (a fully qualified name, trailing dot
// optional) as this server serves them, asked without recursion.
func (b *BIND) TXT(ctx context.Context, name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	m.RecursionDesired = false
	r, err := b.exchange(ctx, "tcp", m)
	if err != nil {
		return nil, fmt.Errorf("query TXT %s at %s: %w", name, b.Addr, err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("query TXT %s at %s: %s", name, b.Addr, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// Notify sends a NOTIFY for zone to this server, so that a secondary
// transfers the zone from its primary now.
func (b *BIND) Notify(ctx context.Context, zone string) error {
	m := new(dns.Msg)
	m.SetNotify(dns.Fqdn(zone))
	r, err := b.exchange(ctx, "udp", m)
	if err != nil {
		return fmt.Errorf("notify %s at %s: %w", zone, b.Addr, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("notify %s at %s: %s", zone, b.Addr, dns.RcodeToString[r.Rcode])
	}
	return nil
}

// SecretFile writes the TSIG secret, base64, to a new file readable by
// its owner only, and returns its path.
func (b *BIND) SecretFile(t testing.TB) string {
	t.Helper()
	return writeSecret(t, "tsig.secret", b.KeySecret+"\n")
}

// KeyFile writes the TSIG key as a BIND key clause, the format of
// tsig-keygen that nsupdate -k reads, to a new file readable by its owner
// only, and returns its path.
func (b *BIND) KeyFile(t testing.TB) string {
	t.Helper()
	return writeSecret(t, "tsig.key", b.keyClause())
}

func (b *BIND) keyClause() string {
	return fmt.Sprintf("key %q {\n\talgorithm %s;\n\tsecret %q;\n};\n", b.KeyName, b.KeyAlgorithm, b.KeySecret)
}

func writeSecret(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FreeDNSPort returns a port that was free for both UDP and TCP on every
// one of ips a moment ago.
func FreeDNSPort(t testing.TB, ips ...string) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("free DNS port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if portFree(ips, port) {
			return port
		}
	}
	t.Fatalf("free DNS port: no port free on %v for both UDP and TCP", ips)
	return 0
}

func portFree(ips []string, port int) bool {
	for _, ip := range ips {
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}

// IPv6Loopback reports whether ::1 can be listened on, for a second
// authoritative server on the same port as one on 127.0.0.1 (BIND listens
// only on addresses configured on an interface, so 127.0.0.2 will not do).
func IPv6Loopback() bool {
	pc, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	return hex.EncodeToString(randomBytes(t, n))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
