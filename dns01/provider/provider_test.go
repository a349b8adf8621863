package provider_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/exec"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/dns01/rfc2136"
)

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNew(t *testing.T) {
	secret := writeFile(t, "tsig.secret", "c2VjcmV0\n", 0o600)
	open := writeFile(t, "open.secret", "c2VjcmV0\n", 0o644)
	hook := writeFile(t, "hook", "#!/bin/sh\n", 0o700)
	clause := writeFile(t, "tsig.key", "key \"tp512.\" { algorithm hmac-sha512; secret \"c2VjcmV0\"; };\n", 0o600)
	t.Setenv("TLSPILOT_TEST_TSIG", "c2VjcmV0")

	good := []dns01.Config{
		{Provider: "rfc2136", Server: "127.0.0.1:53", TSIGKey: "tlspilot.", TSIGSecretFile: secret},
		{Provider: "rfc2136", Server: "ns1.example.test", TSIGKey: "k", TSIGAlgorithm: "hmac-sha512", TSIGSecretEnv: "TLSPILOT_TEST_TSIG"},
		{Provider: "exec", Command: hook},
	}
	for _, cfg := range good {
		p, err := provider.New(cfg, nil)
		if err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
			continue
		}
		switch p.(type) {
		case *rfc2136.Provider:
			if cfg.Provider != "rfc2136" {
				t.Errorf("New(%+v) = %T", cfg, p)
			}
		case *exec.Provider:
			if cfg.Provider != "exec" {
				t.Errorf("New(%+v) = %T", cfg, p)
			}
		}
	}

	bad := []struct {
		cfg  dns01.Config
		want string
	}{
		{dns01.Config{}, "dns: no provider"},
		{dns01.Config{Provider: "route53"}, `dns: unknown provider "route53"`},
		{dns01.Config{Provider: "rfc2136", Server: "ns1", TSIGKey: "k", TSIGSecretFile: open},
			"dns: secret file " + open + " is readable by group or others"},
		{dns01.Config{Provider: "rfc2136", Server: "ns1", TSIGKey: "k"}, "needs tsig_secret_file"},
		{dns01.Config{Provider: "rfc2136", Server: "ns1", TSIGKey: "k", TSIGSecretFile: secret, TSIGSecretEnv: "X"}, "not both"},
		{dns01.Config{Provider: "rfc2136", Server: "ns1", TSIGKey: "k", TSIGSecretFile: secret, Command: hook},
			"command is for the exec provider"},
		{dns01.Config{Provider: "rfc2136", TSIGKey: "k", TSIGSecretFile: secret}, "rfc2136: no server"},
		{dns01.Config{Provider: "exec", Command: hook, TSIGKey: "k"}, "tsig_key is for the rfc2136 provider"},
		{dns01.Config{Provider: "exec"}, "exec: no command"},
		{dns01.Config{Provider: "rfc2136", Server: "ns1", TSIGKey: "tlspilot.", TSIGSecretFile: clause},
			"dns: secret file " + clause + ": has no key tlspilot. (keys found: tp512.): check tsig_key"},
		{dns01.Config{Provider: "rfc2136", Server: "ns1", TSIGKey: "tp512.", TSIGAlgorithm: "hmac-sha256", TSIGSecretFile: clause},
			"dns: secret file " + clause + ": defines key tp512. with hmac-sha512, but tsig_algorithm is hmac-sha256"},
	}
	for _, tt := range bad {
		if _, err := provider.New(tt.cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tt.cfg, err, tt.want)
		}
	}
}

func TestPropagation(t *testing.T) {
	cfg := dns01.Config{Resolvers: []string{"127.0.0.1:53"}, AuthoritativePort: 5353, PropagationTimeout: 7, Zone: "example.test"}
	got := cfg.Propagation()
	if got.Resolvers[0] != "127.0.0.1:53" || got.AuthoritativePort != 5353 || got.Timeout != 7 || got.Zone != "example.test" {
		t.Errorf("Propagation() = %+v", got)
	}
}
