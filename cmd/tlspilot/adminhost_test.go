package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
)

// reportSource is an admin.Source with no certificate.
type reportSource struct{}

func (reportSource) Status() []tlspilot.CertStatus { return nil }
func (reportSource) Report(context.Context) tlspilot.StatusReport {
	return tlspilot.NewStatusReport(time.Now(), nil, nil)
}

// TestAdminHostCheck: the admin listener on loopback (the default)
// refuses (403) a request whose Host is a name other than localhost (DNS
// rebinding: the machine's own name too), and answers IP literals and
// localhost.
func TestAdminHostCheck(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	a, err := bindAdminAt(&config.Config{}, "admin_listen", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.serve(ctx, reportSource{}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	_, port, err := net.SplitHostPort(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]int{
		"attacker.example": http.StatusForbidden, "attacker.example:" + port: http.StatusForbidden,
		"127.0.0.1:" + port: http.StatusOK, "localhost:" + port: http.StatusOK,
	}
	if !strings.EqualFold(strings.TrimSuffix(hostname, "."), "localhost") {
		cases[hostname+":"+port] = http.StatusForbidden
	}
	for host, want := range cases {
		req, err := http.NewRequest("GET", "http://127.0.0.1:"+port+"/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /status with Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}
