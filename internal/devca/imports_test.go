package devca

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNotInLibrary checks that neither the tlspilot library nor its commands
// depend on devca: the test CA must never ship in them.
func TestNotInLibrary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	const self = "github.com/tlspilot/tlspilot/internal/devca"
	cmd := exec.Command(goTool, "list", "-deps", "github.com/tlspilot/tlspilot", "github.com/tlspilot/tlspilot/cmd/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == self {
			t.Fatalf("%s is a dependency of the library or of a command", self)
		}
	}
}
