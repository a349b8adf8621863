package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckLogDirs: check refuses, at the key's line, a log directory
// the user serve runs as cannot write, since serve opens new log files
// there as that user after a rotation (SIGUSR1); one it can write passes.
func TestCheckLogDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: serve changes user only when started as root")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rootLogs, nobodyLogs := filepath.Join(dir, "root-logs"), filepath.Join(dir, "nobody-logs")
	for _, d := range []string{rootLogs, nobodyLogs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(nobodyLogs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	body := func(logs string) string {
		return "user = \"nobody\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\n" +
			"access_log = " + strconvQuote(filepath.Join(logs, "access.log")) + "\n\n[[site]]\nnames = [\"logs.example.test\"]\n" +
			"cert_file = " + strconvQuote(filepath.Join(dir, "c.pem")) + "\nkey_file = " + strconvQuote(filepath.Join(dir, "k.pem")) + "\n"
	}
	write(t, conf, body(rootLogs))
	code, out, errOut := runBinary(t, "check", conf)
	if code == 0 || !strings.Contains(errOut, "tlspilot.toml:5: access_log: "+rootLogs) || !strings.Contains(errOut, `serve runs as user "nobody"`) {
		t.Errorf("check with a log directory nobody cannot write: exit %d\n%s%s", code, out, errOut)
	}
	write(t, conf, body(nobodyLogs))
	if code, out, errOut := runBinary(t, "check", conf); code != 0 {
		t.Errorf("check with a log directory nobody owns: exit %d\n%s%s", code, out, errOut)
	}
}
