package main

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// TestTrialAuditTableEscapes: a refused request records the names of
// the agent's CSR as sent, and a CSR's DNS name may hold any ASCII
// (line breaks, tabs, ESC). issuer audit prints such a record on its
// one line, escaped, so an agent can neither forge a line of the trail
// ("... issued ...") nor drive the administrator's terminal.
func TestTrialAuditTableEscapes(t *testing.T) {
	evil := "x.example.com\n2026-12-01T00:00:00Z  web1  issued  web1.example.com  01ab\t\x1b[2J"
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{evil}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil || csr.DNSNames[0] != evil {
		t.Fatalf("a CSR with the name %q: %v", evil, err)
	}
	var out bytes.Buffer
	printAudit(&out, []fleet.AuditRecord{{Time: time.Now(), Host: "web1", Names: csr.DNSNames, Decision: fleet.AuditRefused,
		Reason: "policy: agent web1 may not obtain \x1b]0;owned\x07"}})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || strings.ContainsAny(out.String(), "\x1b\x07\t") || !strings.Contains(lines[1], `x.example.com\n2026`) {
		t.Errorf("issuer audit table:\n%q", out.String())
	}
}
