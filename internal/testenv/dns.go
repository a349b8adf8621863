package testenv

import (
	"fmt"
	"log"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/miekg/dns"
)

// startDNS starts a challtestsrv DNS server on a free 127.0.0.1 port that
// answers every A query with 127.0.0.1 and AAAA queries with nothing, waits
// until it answers over both UDP and TCP, and shuts it down in t.Cleanup.
// It tries a few ports, since a free port can be taken before it binds.
func startDNS(t *testing.T, logger *log.Logger) (*challtestsrv.ChallSrv, string) {
	t.Helper()
	var lastErr error
	for range 3 {
		addr := freeUDPAndTCPAddr(t)
		srv, err := challtestsrv.New(challtestsrv.Config{DNSAddrs: []string{addr}, Log: logger})
		if err != nil {
			t.Fatalf("challtestsrv: %v", err)
		}
		srv.SetDefaultDNSIPv4("127.0.0.1")
		srv.SetDefaultDNSIPv6("")
		srv.Run()
		if lastErr = waitDNS(addr, 5*time.Second); lastErr == nil {
			t.Cleanup(srv.Shutdown)
			return srv, addr
		}
		srv.Shutdown()
	}
	t.Fatalf("challtestsrv DNS server did not start: %v", lastErr)
	return nil, ""
}

// waitDNS waits until addr answers an A query over UDP and over TCP.
func waitDNS(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, network := range []string{"udp", "tcp"} {
		for {
			err := queryA(network, addr)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s %s: %w", network, addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// queryA asks addr for the A record of a test name and checks the answer.
func queryA(network, addr string) error {
	c := &dns.Client{Net: network, Timeout: time.Second}
	m := new(dns.Msg)
	m.SetQuestion("probe.testenv.test.", dns.TypeA)
	in, _, err := c.Exchange(m, addr)
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
func freeUDPAndTCPAddr(t *testing.T) string {
	t.Helper()
	for range 10 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatalf("no port free for both TCP and UDP on 127.0.0.1")
	return ""
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		defer ln.Close() // keep all open until all are picked, so they differ
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports[i], _ = strconv.Atoi(port)
	}
	return ports
}
