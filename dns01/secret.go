package dns01

import (
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// keyClause matches a BIND key clause, key "name" { ... };, as
// tsig-keygen writes it: the name, and the statements between the braces.
var keyClause = regexp.MustCompile(`(?s)\bkey\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;`)

// Statements of a key clause.
var (
	clauseSecret    = regexp.MustCompile(`secret\s+"([^"]*)"`)
	clauseAlgorithm = regexp.MustCompile(`algorithm\s+"?([A-Za-z0-9.-]+)"?\s*;`)
)

// TSIGKey is a TSIG key as read from a secret file.
type TSIGKey struct {
	// Name is the key's name as the file's key clause gives it, or the
	// name asked for when the file holds the secret alone.
	Name string
	// Algorithm is the key clause's algorithm, lower case without a
	// trailing dot, or the algorithm asked for (which may be "") when the
	// file holds the secret alone or its clause names none.
	Algorithm string
	// Secret is the base64 secret.
	Secret string
}

// ReadKey reads the TSIG key named name from the file at path: the base64
// secret alone, or BIND key clauses (key "name" { algorithm ...; secret
// "..."; };) as tsig-keygen writes them, of which it takes the one named
// name (names compared without case or trailing dot; with name "", the
// only one). alg is the algorithm configured, or "" for none: a clause's
// algorithm is used when alg is "", and a clause whose algorithm differs
// from alg is an error naming both, as is one whose algorithm is neither
// hmac-sha256 nor hmac-sha512. Errors name the file and never
// contain the secret. Like ssh with private keys, it refuses a file that
// group or others may read.
func ReadKey(path, name, alg string) (TSIGKey, error) {
	s, err := readSecretFile(path)
	if err != nil {
		return TSIGKey{}, err
	}
	k := TSIGKey{Name: name, Algorithm: normalAlgorithm(alg), Secret: s}
	if clauses := keyClause.FindAllStringSubmatch(s, -1); clauses != nil {
		k, err = pickClause(clauses, name, k.Algorithm)
		if err != nil {
			return TSIGKey{}, fmt.Errorf("secret file %s: %w", path, err)
		}
	} else if m := clauseSecret.FindStringSubmatch(s); m != nil {
		k.Secret = m[1]
	}
	if err := checkBase64(k.Secret); err != nil {
		return TSIGKey{}, fmt.Errorf("secret file %s: %w", path, err)
	}
	return k, nil
}

// ReadSecret reads the base64 secret from the file at path as ReadKey
// does, for a file that holds one key (or the secret alone): a file with
// several key clauses is refused, since the key's name is not known
// here. ReadKey also checks the clause's name and algorithm against the
// configuration's.
func ReadSecret(path string) (string, error) {
	k, err := ReadKey(path, "", "")
	return k.Secret, err
}

// readSecretFile reads the file at path, refusing one that group or
// others may read, and trims the white space around its content.
func readSecretFile(path string) (string, error) {
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
	return strings.TrimSpace(string(b)), nil
}

// pickClause returns the key of the clause named name (the only clause
// when name is ""), with its algorithm checked against alg.
func pickClause(clauses [][]string, name, alg string) (TSIGKey, error) {
	var names []string
	for _, c := range clauses {
		names = append(names, c[1])
	}
	i := slices.IndexFunc(clauses, func(c []string) bool { return sameKeyName(c[1], name) })
	switch {
	case name == "" && len(clauses) == 1:
		i = 0
	case name == "":
		return TSIGKey{}, fmt.Errorf("holds keys %s: set tsig_key to the one to use", strings.Join(names, ", "))
	case i < 0:
		return TSIGKey{}, fmt.Errorf("has no key %s (keys found: %s): check tsig_key", name, strings.Join(names, ", "))
	}
	k := TSIGKey{Name: clauses[i][1], Algorithm: alg}
	if m := clauseSecret.FindStringSubmatch(clauses[i][2]); m != nil {
		k.Secret = m[1]
	}
	m := clauseAlgorithm.FindStringSubmatch(clauses[i][2])
	if m == nil {
		return k, nil
	}
	switch fileAlg := normalAlgorithm(m[1]); {
	case fileAlg != "hmac-sha256" && fileAlg != "hmac-sha512":
		return TSIGKey{}, fmt.Errorf("defines key %s with %s: want hmac-sha256 or hmac-sha512 (tsig-keygen -a hmac-sha256)", k.Name, fileAlg)
	case alg == "":
		k.Algorithm = fileAlg
	case fileAlg != alg:
		return TSIGKey{}, fmt.Errorf("defines key %s with %s, but tsig_algorithm is %s", k.Name, fileAlg, alg)
	}
	return k, nil
}

// sameKeyName reports whether two key names are the same name.
func sameKeyName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// normalAlgorithm returns a TSIG algorithm name lower case, without a
// trailing dot.
func normalAlgorithm(alg string) string {
	return strings.ToLower(strings.TrimSuffix(alg, "."))
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
