package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestServeDNS01: serve obtains a wildcard certificate through the [dns]
// section of its config (rfc2136 to a real BIND, which Pebble validates
// against), and the TXT records are gone afterwards.
func TestServeDNS01(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	e := newEnvWith(t, testenv.PebbleOptions{DNSServer: b.Addr})
	e.config(fmt.Sprintf(`
[dns]
provider = "rfc2136"
server = %q
tsig_key = %q
tsig_algorithm = %q
tsig_secret_file = %q
resolvers = [%q]
authoritative_port = %d
propagation_timeout = "30s"

[[site]]
names = ["example.test", "*.example.test"]
challenge = "dns-01"
root = %q
`, b.Addr, b.KeyName, b.KeyAlgorithm, b.SecretFile(t), b.Addr, b.Port, filepath.Join(e.dir, "www")))
	e.serve()
	e.waitIssued("example.test", 60*time.Second)
	e.waitIssued("anything.example.test", 5*time.Second)
	code, body, _ := get(t, e.client(), "https://www.example.test/")
	if code != 200 || !strings.Contains(body, "static site") {
		t.Errorf("wildcard site: %d %q", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		txt, err := b.TXT(t.Context(), "_acme-challenge.example.test")
		if err == nil && len(txt) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TXT records left behind: %q %v", txt, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
