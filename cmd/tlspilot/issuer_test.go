package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// issuerEnv is an env whose config makes the host a fleet issuer, and
// the issuer_listen address (a free loopback port).
func issuerEnv(t *testing.T) (*env, string) {
	t.Helper()
	e, addr := newEnv(t), freeAddr(t)
	e.config(fmt.Sprintf("issuer_listen = %q\nissuer_names = [\"issuer.example.test\", \"127.0.0.1\"]\n", addr))
	return e, addr
}

// mustRun runs the built binary and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errOut := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out, errOut
}

// TestIssuerInitCA: with issuer_listen, the built binary's init makes the
// fleet CA once (kept by a second init), its key sealed in the storage
// (no file holds a clear key), and `issuer ca` prints its certificate; a
// storage init has not made is reported, not created.
func TestIssuerInitCA(t *testing.T) {
	e, _ := issuerEnv(t)
	code, _, errOut := runBinary(t, "issuer", "ca", "--config", e.conf)
	if code != 1 || !strings.Contains(errOut, "run tlspilot init") {
		t.Errorf("issuer ca before init: exit %d, %s", code, errOut)
	}
	out, _ := mustRun(t, "init", "--config", e.conf)
	if !strings.Contains(out, `fleet CA "tlspilot fleet CA"`) || !strings.Contains(out, "): created;") {
		t.Errorf("init output lacks the fleet CA created:\n%s", out)
	}
	first, _ := mustRun(t, "issuer", "ca", "--config", e.conf)
	out, _ = mustRun(t, "init", "--config", e.conf)
	if !strings.Contains(out, "): exists, kept;") {
		t.Errorf("second init output lacks the fleet CA kept:\n%s", out)
	}
	second, _ := mustRun(t, "issuer", "ca", "--config", e.conf)
	if first != second {
		t.Error("the second init changed the fleet CA")
	}
	block, rest := pem.Decode([]byte(first))
	if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("issuer ca printed %q", first)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.Subject.CommonName != "tlspilot fleet CA" {
		t.Errorf("fleet CA certificate: %v %+v", err, c)
	}
	sealed := false
	for p, v := range readTree(t, filepath.Join(e.dir, "storage")) {
		if strings.Contains(v, "PRIVATE KEY-----") {
			t.Errorf("%s holds a private key in clear", p)
		}
		sealed = sealed || strings.HasSuffix(p, filepath.Join("fleet", "ca")) && strings.Contains(v, "TLSPILOT ENCRYPTED KEY")
	}
	if !sealed {
		t.Error("no fleet/ca record holding a sealed key")
	}
}

// TestIssuerEnrollAgents: enroll prints a token alone on stdout that is
// stored nowhere, enrols its host once (redeemed here through the
// package over the same storage, as the issuer's API will), agents lists
// the host pending, enrolled then revoked, and mistakes are refused with
// exit 1.
func TestIssuerEnrollAgents(t *testing.T) {
	e, _ := issuerEnv(t)
	mustRun(t, "init", "--config", e.conf)
	tok, errOut := mustRun(t, "issuer", "enroll", "--config", e.conf, "db1", "--names", "db1.example.com, *.db1.example.com", "--ttl", "2h")
	tok = strings.TrimSuffix(tok, "\n")
	if len(tok) != 43 || strings.Contains(tok, "\n") {
		t.Fatalf("enroll stdout %q: want the token alone", tok)
	}
	if !strings.Contains(errOut, "names db1.example.com, *.db1.example.com") || !strings.Contains(errOut, "tlspilot agent enroll") {
		t.Errorf("enroll stderr:\n%s", errOut)
	}
	storage := filepath.Join(e.dir, "storage")
	for p, v := range readTree(t, storage) {
		if strings.Contains(v, tok) || strings.Contains(p, tok) {
			t.Errorf("%s holds the enrolment token", p)
		}
	}
	out, _ := mustRun(t, "issuer", "agents", "--config", e.conf)
	if !strings.Contains(out, "db1   pending  db1.example.com,*.db1.example.com") || !strings.Contains(out, "1 agent(s)") {
		t.Errorf("agents:\n%s", out)
	}

	redeem(t, storage, tok, nil)
	redeem(t, storage, tok, fleet.ErrTokenUsed)
	out, _ = mustRun(t, "issuer", "agents", "--config", e.conf)
	if !strings.Contains(out, "db1   enrolled") {
		t.Errorf("agents after enrolment:\n%s", out)
	}

	out, _ = mustRun(t, "issuer", "revoke-agent", "--config", e.conf, "db1")
	if !strings.HasPrefix(out, "agent db1: revoked at ") {
		t.Errorf("revoke-agent: %s", out)
	}
	out, _ = mustRun(t, "issuer", "agents", "--config", e.conf)
	if !strings.Contains(out, "db1   revoked") {
		t.Errorf("agents after revocation:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"revoke-agent", "--config", e.conf, "db9"}, "no such agent"},
		{[]string{"enroll", "--config", e.conf, "db2"}, "no names"},
		{[]string{"enroll", "--config", e.conf, "db2", "--names", "192.0.2.1"}, "an IP address"},
		{[]string{"enroll", "--config", e.conf, "../db2", "--names", "db2.example.com"}, `agent host "../db2"`},
		{[]string{"enroll", "--config", e.conf, "db2", "--names", "db2.example.com", "--ttl", "31d"}, "want up to"},
	} {
		code, out, errOut := runBinary(t, append([]string{"issuer"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("issuer %v: exit %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
	e.config("")
	code, _, errOut := runBinary(t, "issuer", "agents", "--config", e.conf)
	if code != 1 || !strings.Contains(errOut, "issuer_listen: not set") {
		t.Errorf("issuer agents without issuer_listen: exit %d, %s", code, errOut)
	}
}

// redeem uses tok through the fleet package over the storage directory
// and checks the outcome against want (nil for success).
func redeem(t *testing.T, dir, tok string, want error) {
	t.Helper()
	st, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	r, err := fleet.New(fleet.Options{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Redeem(context.Background(), tok)
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("Redeem: %v, want %v", err, want)
	}
}

// TestIssuerHelp: each issuer command prints its help once on stdout
// with --help, a bad flag or a missing argument exits 2, and an unknown
// command lists the known ones.
func TestIssuerHelp(t *testing.T) {
	for _, cmd := range []string{"ca", "enroll", "agents", "revoke-agent"} {
		code, out, errOut := runCLI(t, "issuer", cmd, "--help")
		if code != 0 || strings.Count(out, "Usage: tlspilot issuer "+cmd+" ") != 1 || errOut != "" {
			t.Errorf("issuer %s --help: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
		code, out, errOut = runCLI(t, "issuer", cmd, "--bogus")
		if code != 2 || out != "" || !strings.Contains(errOut, "bogus") {
			t.Errorf("issuer %s --bogus: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "issuer", "revoke-agent", "--config", "x.toml"); code != 2 || !strings.Contains(errOut, "want 1 argument(s) (HOST), got 0") {
		t.Errorf("revoke-agent without HOST: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "issuer", "bogus"); code != 2 || !strings.Contains(errOut, "revoke-agent") {
		t.Errorf("issuer bogus: exit %d, %s", code, errOut)
	}
	if code, out, _ := runCLI(t, "help", "issuer"); code != 0 || !strings.Contains(out, "enroll --config FILE HOST") {
		t.Errorf("help issuer: exit %d, %s", code, out)
	}
}
