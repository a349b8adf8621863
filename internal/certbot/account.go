package certbot

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
)

// Account is an ACME account certbot registered.
type Account struct {
	// ID is certbot's account id (the directory name).
	ID string
	// Dir is the account's directory.
	Dir string
	// URL is the account URL at the CA (regr.json "uri").
	URL string
	// Key is the account key (private_key.json, a JWK).
	Key crypto.Signer
}

// AccountDir returns where certbot keeps account id of the CA whose
// directory URL is server: accounts/<host[:port]><path>/<id>.
func AccountDir(dir, server, id string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server %q is not a URL", server)
	}
	return filepath.Join(dir, "accounts", u.Host, filepath.FromSlash(u.Path), id), nil
}

// ReadAccount reads account id of the CA server from the certbot
// directory dir.
func ReadAccount(dir, server, id string) (*Account, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return nil, fmt.Errorf("bad account id %q", id)
	}
	ad, err := AccountDir(dir, server, id)
	if err != nil {
		return nil, err
	}
	a := &Account{ID: id, Dir: ad}
	var regr struct {
		URI string `json:"uri"`
	}
	if err := readJSON(filepath.Join(ad, "regr.json"), &regr); err != nil {
		return nil, err
	}
	if regr.URI == "" {
		return nil, fmt.Errorf("%s: no account URL (uri)", filepath.Join(ad, "regr.json"))
	}
	a.URL = regr.URI
	var jwk JWK
	kp := filepath.Join(ad, "private_key.json")
	if err := readJSON(kp, &jwk); err != nil {
		return nil, err
	}
	if a.Key, err = jwk.Signer(); err != nil {
		return nil, fmt.Errorf("%s: %w", kp, err)
	}
	return a, nil
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read account: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// JWK is a private JSON Web Key (RFC 7517, 7518) as certbot stores
// account keys: RSA or EC.
type JWK struct {
	Kty string `json:"kty"`
	// RSA
	N, E, D, P, Q, DP, DQ, QI string
	// EC
	Crv, X, Y string
}

// Signer returns the private key the JWK holds.
func (k JWK) Signer() (crypto.Signer, error) {
	switch k.Kty {
	case "RSA":
		return k.rsa()
	case "EC":
		return k.ec()
	}
	return nil, fmt.Errorf("unsupported account key type %q (want RSA or EC)", k.Kty)
}

func (k JWK) rsa() (crypto.Signer, error) {
	n, e, d, p, q, err := ints(k.N, k.E, k.D, k.P, k.Q)
	if err != nil {
		return nil, err
	}
	if !e.IsInt64() || e.Int64() > 1<<31-1 {
		return nil, errors.New("RSA exponent too large")
	}
	key := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())}, D: d, Primes: []*big.Int{p, q}}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("RSA account key: %w", err)
	}
	key.Precompute()
	return key, nil
}

func (k JWK) ec() (crypto.Signer, error) {
	curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
	c, ok := curves[k.Crv]
	if !ok {
		return nil, fmt.Errorf("unsupported curve %q", k.Crv)
	}
	d, err := b64(k.D)
	if err != nil {
		return nil, err
	}
	size := (c.Params().BitSize + 7) / 8
	if len(d) < size {
		d = append(make([]byte, size-len(d)), d...)
	}
	key, err := ecdsa.ParseRawPrivateKey(c, d)
	if err != nil {
		return nil, fmt.Errorf("EC account key: %w", err)
	}
	return key, nil
}

// ints decodes base64url big-endian integers; every one is required.
func ints(ss ...string) (n, e, d, p, q *big.Int, err error) {
	out := make([]*big.Int, len(ss))
	for i, s := range ss {
		b, err := b64(s)
		if err != nil {
			return nil, nil, nil, nil, nil, err
		}
		out[i] = new(big.Int).SetBytes(b)
	}
	return out[0], out[1], out[2], out[3], out[4], nil
}

func b64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("JWK member missing")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("JWK member: %w", err)
	}
	return b, nil
}
