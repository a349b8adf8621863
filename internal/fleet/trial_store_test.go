package fleet

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/keys"
)

// TestTrialAgentStaleSealedKeyNotDeployed: an agent record whose sealed
// key was replaced by another sealed under the same record (an older key
// of the certificate, from a restored backup or written by whoever else
// can write to the agent's storage) still opens; the key must not be
// deployed beside a certificate it does not belong to (the web server
// fails to load the pair, or serves a broken one), the failure must say
// why, and a new certificate is asked for at once rather than at the
// renewal time, weeks of failed deployments later.
func TestTrialAgentStaleSealedKeyNotDeployed(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	e := newAgentEnv(t)
	k := e.keeper(t, f, false, "db1.example.com")
	now := time.Now()
	rec := seed(t, k, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	other, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := e.sealer.SealKey(other, k.certs[0].key)
	if err != nil {
		t.Fatal(err)
	}
	rec.SealedKey = string(sealed)
	if err := storeRecord(ctx, e.st, k.certs[0].key, rec); err != nil {
		t.Fatal(err)
	}
	k.Pass(ctx, now, false)
	if _, err := os.Stat(filepath.Join(e.dir, "privkey.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key that does not match its certificate was deployed (stat: %v)", err)
	}
	if got := record(t, k).Deploy; got.Attempts != 1 || !strings.Contains(got.LastError, "does not match") {
		t.Errorf("deploy state %+v; want a failure saying the key does not match the certificate", got)
	}
	k.Pass(ctx, now.Add(time.Second), false)
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests to the issuer after the key was found not to match; want a new certificate asked for at once", n)
	}
}

// TestTrialIdentityKeyMismatch: an agent identity whose sealed key is not
// its certificate's is refused when loaded, saying so, instead of failing
// every TLS handshake with the issuer for a reason the agent cannot name.
func TestTrialIdentityKeyMismatch(t *testing.T) {
	ctx := context.Background()
	e := newAgentEnv(t)
	id, err := LoadIdentity(ctx, e.st, e.sealer)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	// The record as a writer of the storage leaves it: the certificate
	// kept, the key another sealed under the identity's record.
	if err := SaveIdentity(ctx, e.st, e.sealer, &Identity{Host: id.Host, Key: other, Certificate: id.Certificate}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(ctx, e.st, e.sealer); !errors.Is(err, keys.ErrKeyMismatch) {
		t.Errorf("LoadIdentity of a key that is not its certificate's: %v, want ErrKeyMismatch", err)
	}
}

// TestTrialAgentReuseKeyNotStale: with reuse_key, the renewal ordered
// at once because the stored key is not the certificate's must not put
// that stale key (an older key restored from a backup, one the operator
// may have retired) in its CSR: reuse_key keeps the key of the
// certificate in service, and the issuer lets a reuse_key agent send a
// key it has seen before. A new key is made instead.
func TestTrialAgentReuseKeyNotStale(t *testing.T) {
	ctx := context.Background()
	f := startFaultyIssuer(t, down)
	e := newAgentEnv(t)
	k := e.keeper(t, f, true, "db1.example.com")
	now := time.Now()
	rec := seed(t, k, now.Add(-time.Hour), now.AddDate(0, 0, 30))
	stale, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := e.sealer.SealKey(stale, k.certs[0].key)
	if err != nil {
		t.Fatal(err)
	}
	rec.SealedKey = string(sealed)
	if err := storeRecord(ctx, e.st, k.certs[0].key, rec); err != nil {
		t.Fatal(err)
	}
	k.Pass(ctx, now, false)
	k.Pass(ctx, now.Add(time.Second), false)
	csrs := f.requests()
	if len(csrs) == 0 {
		t.Fatal("no certificate asked for after the key was found not to match")
	}
	for _, der := range csrs {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if stale.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(csr.PublicKey) {
			t.Errorf("a CSR carries the stale key stored beside the certificate in service; want a new key")
		}
	}
}
