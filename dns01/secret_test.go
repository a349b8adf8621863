package dns01_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/dns01"
)

func TestReadSecret(t *testing.T) {
	const secret = "c2VjcmV0IHNlY3JldCBzZWNyZXQ="
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // the secret, or a part of the error
		wantErr bool
	}{
		{"bare", secret + "\n", 0o600, secret, false},
		{"read-only", secret, 0o400, secret, false},
		{"key clause", "key \"tlspilot.\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret + "\";\n};\n", 0o600, secret, false},
		{"group-readable", secret, 0o640, "is readable by group or others (mode 0640", true},
		{"world-readable", secret, 0o604, "is readable by group or others (mode 0604", true},
		{"not base64", "not base64!", 0o600, "secret is not base64", true},
		{"empty", "\n", 0o600, "empty secret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tsig.secret")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := dns01.ReadSecret(path)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("ReadSecret = %q, %v; want an error naming %s and saying %q", got, err, path, tt.want)
				}
				if strings.Contains(err.Error(), "not base64!") {
					t.Errorf("error quotes the secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ReadSecret = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := dns01.ReadSecret(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv("TLSPILOT_TEST_SECRET", " c2VjcmV0 \n")
	if got, err := dns01.SecretFromEnv("TLSPILOT_TEST_SECRET"); err != nil || got != "c2VjcmV0" {
		t.Fatalf("SecretFromEnv = %q, %v", got, err)
	}
	if _, err := dns01.SecretFromEnv("TLSPILOT_TEST_UNSET"); err == nil || !strings.Contains(err.Error(), "TLSPILOT_TEST_UNSET is not set") {
		t.Fatalf("unset variable: %v", err)
	}
}

func TestChallengeName(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "_acme-challenge.example.com.",
		"*.Example.com":    "_acme-challenge.example.com.",
		"www.example.com.": "_acme-challenge.www.example.com.",
	} {
		if got := dns01.ChallengeName(in); got != want {
			t.Errorf("ChallengeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadKey: of a file of BIND key clauses, the one named as asked is
// taken, with its algorithm when none is asked for; a missing name or a
// different algorithm is an error naming the file and both sides.
func TestReadKey(t *testing.T) {
	const s1, s2 = "b3RoZXIgc2VjcmV0", "c2VjcmV0IHNlY3JldCBzZWNyZXQ="
	two := "key \"other.\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + s1 + "\";\n};\n" +
		"key \"tp512.\" {\n\talgorithm hmac-sha512;\n\tsecret \"" + s2 + "\";\n};\n"
	tests := []struct {
		name, content, key, alg string
		want                    dns01.TSIGKey
		wantErr                 string
	}{
		{"second clause, its algorithm", two, "tp512.", "", dns01.TSIGKey{Name: "tp512.", Algorithm: "hmac-sha512", Secret: s2}, ""},
		{"name without dot, upper case", two, "TP512", "HMAC-SHA512", dns01.TSIGKey{Name: "tp512.", Algorithm: "hmac-sha512", Secret: s2}, ""},
		{"first clause", two, "other.", "hmac-sha256", dns01.TSIGKey{Name: "other.", Algorithm: "hmac-sha256", Secret: s1}, ""},
		{"no such key", two, "tlspilot.", "", dns01.TSIGKey{}, "has no key tlspilot. (keys found: other., tp512.): check tsig_key"},
		{"algorithm differs", two, "tp512.", "hmac-sha256", dns01.TSIGKey{}, "defines key tp512. with hmac-sha512, but tsig_algorithm is hmac-sha256"},
		{"unsupported algorithm", "key \"old.\" { algorithm hmac-md5; secret \"" + s1 + "\"; };", "old.", "", dns01.TSIGKey{}, "defines key old. with hmac-md5: want hmac-sha256 or hmac-sha512"},
		{"several keys, no name", two, "", "", dns01.TSIGKey{}, "holds keys other., tp512.: set tsig_key"},
		{"secret alone", s2 + "\n", "k.", "", dns01.TSIGKey{Name: "k.", Secret: s2}, ""},
		{"clause without algorithm", "key k { secret \"" + s2 + "\"; };", "k.", "hmac-sha512", dns01.TSIGKey{Name: "k", Algorithm: "hmac-sha512", Secret: s2}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tsig.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := dns01.ReadKey(path, tt.key, tt.alg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "secret file "+path+": "+tt.wantErr) {
					t.Fatalf("ReadKey = %+v, %v; want an error %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), s1) || strings.Contains(err.Error(), s2) {
					t.Errorf("error quotes a secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ReadKey = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
