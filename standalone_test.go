package tlspilot

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestStandalone: certificates with a standalone address are validated
// by http-01 and tls-alpn-01 on listeners of the Manager's own, which are
// closed again once the certificates are issued.
func TestStandalone(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	httpAddr, tlsAddr := "127.0.0.1:"+strconv.Itoa(p.HTTPPort), "127.0.0.1:"+strconv.Itoa(p.TLSPort)
	m := startManager2(t, p, testConfig(t, p, nil))
	if err := m.ManageCerts(t.Context(),
		Cert{Names: []string{"http.standalone.test"}, Challenge: HTTP01, Standalone: httpAddr},
		Cert{Names: []string{"alpn.standalone.test"}, Challenge: TLSALPN01, Standalone: tlsAddr}); err != nil {
		t.Fatal(err)
	}
	waitServing(t, m, 60*time.Second)
	for _, addr := range []string{httpAddr, tlsAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still held after validation: %v", addr, err)
			continue
		}
		_ = l.Close()
	}
}
