package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNotifyCommandRunnable: check refuses, at the notify_command
// line, a program the user serve runs as may not execute (here root's,
// mode 0700): serve runs hooks as that user, so every notification
// failed, and the operator learnt it only at the first event, perhaps
// the certificate's "expiring". One it may execute passes.
func TestCheckNotifyCommandRunnable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: serve changes user only when started as root")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hook := filepath.Join(dir, "hook")
	write(t, hook, "#!/bin/sh\nexit 0\n")
	if err := os.Chmod(hook, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, "user = \"nobody\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\n"+
		"notify_command = ["+strconvQuote(hook)+", \"--mail\"]\n\n[[site]]\nnames = [\"notify.example.test\"]\n"+
		"cert_file = "+strconvQuote(filepath.Join(dir, "c.pem"))+"\nkey_file = "+strconvQuote(filepath.Join(dir, "k.pem"))+"\n")
	code, out, errOut := runBinary(t, "check", conf)
	if code == 0 || !strings.Contains(errOut, "tlspilot.toml:5: notify_command: "+hook+": permission denied") || !strings.Contains(errOut, `serve runs as user "nobody"`) {
		t.Errorf("check with a hook nobody cannot run: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runBinary(t, "check", conf); code != 0 {
		t.Errorf("check with a hook nobody can run: exit %d\n%s%s", code, out, errOut)
	}
}
