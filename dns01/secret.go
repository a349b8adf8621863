package dns01

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// keyClauseSecret finds the secret of a BIND key clause.
var keyClauseSecret = regexp.MustCompile(`secret\s+"([^"]*)"`)

// ReadSecret reads a base64 secret from the file at path: the secret
// alone, or a BIND key clause (key "name" { algorithm ...; secret "..."; };)
// as tsig-keygen writes it. Like ssh with private keys, it refuses a file
// that group or others may read, with an error naming the path.
func ReadSecret(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return "", fmt.Errorf("secret file %s is readable by group or others (mode %04o; want 0600 or 0400)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if m := keyClauseSecret.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if err := checkBase64(s); err != nil {
		return "", fmt.Errorf("secret file %s: %w", path, err)
	}
	return s, nil
}

// SecretFromEnv returns the base64 secret in the environment variable
// name.
func SecretFromEnv(name string) (string, error) {
	s, ok := os.LookupEnv(name)
	if !ok {
		return "", fmt.Errorf("secret: environment variable %s is not set", name)
	}
	s = strings.TrimSpace(s)
	if err := checkBase64(s); err != nil {
		return "", fmt.Errorf("secret in environment variable %s: %w", name, err)
	}
	return s, nil
}

func checkBase64(s string) error {
	if s == "" {
		return fmt.Errorf("empty secret")
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return fmt.Errorf("secret is not base64") // the error would quote the secret
	}
	return nil
}
