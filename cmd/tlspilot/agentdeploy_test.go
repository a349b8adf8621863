package main

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/config"
)

// TestAgentDeployConfig: each [[certificate]] the agent keeps carries a
// fingerprint of its deploy configuration, the same for the same
// config and another once its reload (or files) changed, so that a
// restarted agent deploys at once after the operator fixed a failing
// deploy (fleet.KeptCert.DeployConfig).
func TestAgentDeployConfig(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "fleet-ca.pem"), selfSignedPEM(t))
	conf := agentConfig(t, dir, "127.0.0.1:1", filepath.Join(dir, "fleet-ca.pem"), "db1.example.com")
	fingerprint := func() string {
		t.Helper()
		cfg, err := config.LoadAgent(conf)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := keptCerts(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return kc[0].DeployConfig
	}
	before := fingerprint()
	if before == "" || fingerprint() != before {
		t.Fatalf("fingerprint %q, then %q for the same config", before, fingerprint())
	}
	orig := readFile(t, conf)
	write(t, conf, strings.Replace(orig, `reload = ["sh", "-c", `, `reload = ["/bin/sh", "-c", `, 1))
	if fingerprint() == before {
		t.Errorf("the same fingerprint after the reload command changed")
	}
	write(t, conf, strings.Replace(orig, `mode = "0640"`, `mode = "0600"`, 1))
	if fingerprint() == before {
		t.Errorf("the same fingerprint after the key file's mode changed")
	}
}
