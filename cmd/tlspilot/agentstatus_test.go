package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot"
)

// TestAgentStatusMissingStorage: status on an agent's config whose
// storage does not exist only reads: it creates nothing, reports every
// certificate pending (WARNING) and notes that the storage does not
// exist, in the text and in --json's note, as serve's status does.
func TestAgentStatusMissingStorage(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "fleet-ca.pem"), selfSignedPEM(t))
	conf := agentConfig(t, dir, "127.0.0.1:1", filepath.Join(dir, "fleet-ca.pem"), "db1.example.com")
	storageDir := filepath.Join(dir, "agent")
	code, out, errOut := runCLI(t, "status", "--config", conf)
	if code != tlspilot.ExitWarning || !strings.HasPrefix(out, "WARNING: 2 pending") ||
		!strings.Contains(out, "note: the storage "+storageDir+" does not exist") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "status", "--config", conf, "--json")
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != tlspilot.ExitWarning || !strings.Contains(r.Note, "does not exist") {
		t.Errorf("status --json: exit %d, %v, note %q", code, err, r.Note)
	}
	if _, err := os.Stat(storageDir); !os.IsNotExist(err) {
		t.Errorf("status created the agent's storage %s: %v", storageDir, err)
	}
}
