package ocspclient

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds Parse arbitrary bytes as a response about the leaf of
// testdata/fuzz-chain.pem. The seeds (testdata/fuzz/FuzzParse) are valid
// responses for that leaf, signed by its issuer or a delegated responder,
// good, revoked and unknown, at fuzzNow. Parse must never panic, and
// whatever it accepts must be fresh, about that leaf, and kept as given.
func FuzzParse(f *testing.F) {
	leaf, issuer := fuzzChain(f)
	fuzzNow := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Parse(raw, leaf, issuer, fuzzNow)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Raw, raw) {
			t.Error("Raw differs from the input")
		}
		if !r.Fresh(fuzzNow) || r.ThisUpdate.After(fuzzNow.Add(MaxClockSkew)) {
			t.Errorf("accepted a response valid %v to %v", r.ThisUpdate, r.Expires())
		}
		if r.ID != IDOf(leaf, issuer) {
			t.Error("accepted a response with another CertID")
		}
		if r.Status != Good && r.Status != Revoked && r.Status != Unknown {
			t.Errorf("status %v", r.Status)
		}
	})
}

// fuzzChain reads the leaf and issuer the fuzz seeds are about.
func fuzzChain(f testing.TB) (leaf, issuer *x509.Certificate) {
	data, err := os.ReadFile("testdata/fuzz-chain.pem")
	if err != nil {
		f.Fatal(err)
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			f.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 {
		f.Fatalf("fuzz-chain.pem: %d certificates, want 2", len(certs))
	}
	return certs[0], certs[1]
}

// TestFuzzSeeds checks that the committed seeds still reach the end of
// Parse (a seed refused early would fuzz only the decoder): each named
// for a status parses with that status at the fuzz target's time.
func TestFuzzSeeds(t *testing.T) {
	leaf, issuer := fuzzChain(t)
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, want := range map[string]Status{"good-by-issuer": Good, "good-delegated": Good, "revoked-delegated": Revoked, "unknown-sha256": Unknown} {
		data, err := os.ReadFile("testdata/fuzz/FuzzParse/" + name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(data), "\n", 3)
		quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
		if !ok {
			t.Fatalf("%s: not a []byte seed", name)
		}
		raw, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := Parse([]byte(raw), leaf, issuer, now)
		if err != nil || r.Status != want {
			t.Errorf("%s: %v, status %v; want %v", name, err, r, want)
		}
	}
}
