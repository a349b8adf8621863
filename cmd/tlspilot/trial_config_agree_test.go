package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckRefusesWhatStartRefuses runs the built binary on configs that
// `tlspilot check` passed while the command they are for refused them at
// start (or, worse, started wrong): check must refuse each, at the same
// file, line and key as the command does, and the command must not start.
func TestCheckRefusesWhatStartRefuses(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	if err := os.WriteFile(filepath.Join(dir, "empty.secret"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	head := "ca = \"https://127.0.0.1:1/dir\"\nstorage = \"" + dir + "/s\"\nadmin_listen = \"off\"\n"
	site := "[[site]]\nnames = [\"a.example\"]\nroot = \"" + www + "\"\n"
	cert := "[[certificate]]\nnames = [\"c.example\"]\n"
	listen := "http_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\n"
	for _, c := range []struct{ name, command, conf, want string }{
		{"one address twice", "serve", head + "http_listen = \"" + addr + "\"\nhttps_listen = \"" + addr + "\"\n" + site,
			"tlspilot.toml:5: https_listen: \"" + addr + "\": also the address of http_listen"},
		{"log file a directory", "serve", head + listen + "log_file = \"" + www + "\"\n" + site,
			"tlspilot.toml:6: log_file: " + www + " is a directory"},
		{"access log a directory", "serve", head + listen + "access_log = \"www\"\n" + site,
			"tlspilot.toml:6: access_log: " + www + " is a directory"},
		{"user id beyond 32 bits", "serve", head + listen + "user = \"4294967296\"\n" + site,
			"tlspilot.toml:6: user: \"4294967296\": a numeric user id"},
		{"upstream paths differ", "serve", head + listen + "[[site]]\nnames = [\"a.example\"]\nproxy = [\"http://127.0.0.1:1/x/\", \"http://127.0.0.1:2/y/\"]\n",
			"tlspilot.toml:8: site[1].proxy[2]: \"http://127.0.0.1:2/y/\": its path \"/y/\" is not \"/x/\""},
		{"empty webhook secret", "serve", head + listen + "notify_webhook = \"https://h.example/tls\"\nnotify_webhook_secret_file = \"empty.secret\"\n" + site,
			"tlspilot.toml:7: notify_webhook_secret_file: " + filepath.Join(dir, "empty.secret") + " is empty"},
		{"combined a directory", "certs", head + cert + "combined = \"www\"\n",
			"tlspilot.toml:6: certificate[1].combined: " + www + " is a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "tlspilot.toml")
			writeFile(t, path, c.conf)
			start := []string{c.command, "--config", path}
			if c.command == "certs" {
				start = append(start, "--once")
			}
			for _, args := range [][]string{{"check", path}, start} {
				code, stderr := runBinaryLimited(t, bin, args...)
				if code == 0 || !strings.Contains(stderr, c.want) {
					t.Errorf("tlspilot %s: exit %d, stderr:\n%s\nwant a refusal with %q", args[0], code, stderr, c.want)
				}
			}
		})
	}
}

// runBinaryLimited runs bin with args, as runBinary does, for at most
// 20 seconds (a command that starts instead of refusing is killed, exit
// -1), and returns its exit code and stderr.
func runBinaryLimited(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("tlspilot %v: %v", args, err)
	return 0, ""
}
