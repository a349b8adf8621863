package devca

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/miekg/dns"
)

// DNSServer is a challtestsrv DNS server on 127.0.0.1 that answers every A
// query with 127.0.0.1 and AAAA queries with nothing.
type DNSServer struct {
	// Addr is its host:port; it serves both UDP and TCP there.
	Addr string
	// Srv is the challtestsrv behind Addr. Callers may add records, such as
	// TXT records for dns-01. Caveat: challtestsrv registers its handler in
	// the global mux of github.com/miekg/dns, so when several servers live
	// in one process, all answer from the records of the one started last.
	Srv *challtestsrv.ChallSrv
}

// StartDNS starts a DNSServer on a free port and waits until it answers
// over both UDP and TCP. It tries a few ports, since a free port can be
// taken before it binds. logw receives its log; nil discards it.
func StartDNS(ctx context.Context, logw io.Writer) (*DNSServer, error) {
	if logw == nil {
		logw = io.Discard
	}
	logger := log.New(logw, "challtestsrv ", log.Lmicroseconds)
	var lastErr error
	for range 3 {
		addr, err := freeUDPAndTCPAddr()
		if err != nil {
			return nil, fmt.Errorf("start DNS server: %w", err)
		}
		srv, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{addr}, Log: logger})
		if err != nil {
			return nil, fmt.Errorf("start DNS server: %w", err)
		}
		srv.SetDefaultDNSIPv4("127.0.0.1")
		srv.SetDefaultDNSIPv6("")
		srv.Run()
		if lastErr = waitDNS(ctx, addr, 5*time.Second); lastErr == nil {
			return &DNSServer{Addr: addr, Srv: srv}, nil
		}
		srv.Shutdown()
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("start DNS server: %w", lastErr)
}

// Close stops the server.
func (d *DNSServer) Close() {
	d.Srv.Shutdown()
}

// waitDNS waits until addr answers an A query over UDP and over TCP.
func waitDNS(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, network := range []string{"udp", "tcp"} {
		for {
			err := queryA(ctx, network, addr)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s %s: %w", network, addr, errors.Join(err, ctx.Err()))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// queryA asks addr for the A record of a test name and checks the answer.
func queryA(ctx context.Context, network, addr string) error {
	c := &dns.Client{Net: network, Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion("probe.devca.test.", dns.TypeA)
	in, _, err := c.ExchangeContext(ctx, m, addr)
	if err != nil {
		return err
	}
	if len(in.Answer) != 1 {
		return fmt.Errorf("want one answer, got %v", in.Answer)
	}
	if a, ok := in.Answer[0].(*dns.A); !ok || !a.A.Equal(net.IPv4(127, 0, 0, 1)) {
		return fmt.Errorf("want A 127.0.0.1, got %v", in.Answer[0])
	}
	return nil
}

// freeUDPAndTCPAddr returns a 127.0.0.1 address whose port was free for both
// TCP and UDP a moment ago.
func freeUDPAndTCPAddr() (string, error) {
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr, nil
		}
	}
	return "", errors.New("no port free for both TCP and UDP on 127.0.0.1")
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. Another process may take one before the caller binds it,
// but none does by connecting out: the ports are drawn below the
// kernel's ephemeral range (ip_local_port_range), from which outgoing
// connections take theirs; a port the kernel handed out for ":0" was
// seen taken that way by a parallel test package's connection. A port is
// handed out at most once per process, so two calls never return the
// same port, even when the first caller has not bound it yet.
func FreePorts(n int) ([]int, error) {
	lo, hi := belowEphemeral()
	ports := make([]int, 0, n)
	handedOut.Lock()
	defer handedOut.Unlock()
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 1000 {
			addr = "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if tries < 1000 {
				continue // taken: draw another
			}
			return nil, fmt.Errorf("free ports: %w", err)
		}
		defer ln.Close() // keep all open until all are picked, so they differ
		port := ln.Addr().(*net.TCPAddr).Port
		if handedOut.ports[port] {
			if tries < 2000 {
				continue // given to an earlier caller, who may not have bound it yet
			}
			return nil, errors.New("free ports: every port drawn was handed out before")
		}
		handedOut.ports[port] = true
		ports = append(ports, port)
	}
	return ports, nil
}

// handedOut is every port FreePorts returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// belowEphemeral returns a range of ports [lo, hi) under the kernel's
// ephemeral range, or lo == hi when it cannot tell (not Linux).
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start < 11024 {
		return 0, 0
	}
	return start - 10000, start
}
