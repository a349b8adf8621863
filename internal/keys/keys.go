// Package keys generates private keys and certificate requests and keeps
// private keys encrypted at rest.
package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
)

// Type names a private key algorithm and size.
type Type string

// The supported key types.
const (
	ECDSAP256 Type = "ecdsa-p256"
	ECDSAP384 Type = "ecdsa-p384"
	RSA2048   Type = "rsa2048"
	RSA3072   Type = "rsa3072"
	RSA4096   Type = "rsa4096"
)

// typeList is the supported types in the order error messages list them.
const typeList = "ecdsa-p256, ecdsa-p384, rsa2048, rsa3072, rsa4096"

// ParseType validates s (case-insensitive, surrounding spaces trimmed) and
// returns the Type. An unknown name gives an error listing the valid ones.
func ParseType(s string) (Type, error) {
	t := Type(strings.ToLower(strings.TrimSpace(s)))
	switch t {
	case ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096:
		return t, nil
	}
	return "", fmt.Errorf("keys: unknown key type %q (want one of %s)", s, typeList)
}

// IsRSA reports whether t is one of the RSA types.
func (t Type) IsRSA() bool {
	return t == RSA2048 || t == RSA3072 || t == RSA4096
}

// rsaBits returns the modulus size of an RSA type, or 0.
func (t Type) rsaBits() int {
	switch t {
	case RSA2048:
		return 2048
	case RSA3072:
		return 3072
	case RSA4096:
		return 4096
	}
	return 0
}

// Generate returns a new private key of type t from crypto/rand: an
// *ecdsa.PrivateKey or an *rsa.PrivateKey.
func Generate(t Type) (crypto.Signer, error) {
	switch {
	case t == ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case t == ECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case t.IsRSA():
		k, err := rsa.GenerateKey(rand.Reader, t.rsaBits())
		if err != nil {
			return nil, fmt.Errorf("keys: generate %s: %w", t, err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("keys: generate: unknown key type %q (want one of %s)", string(t), typeList)
}

// TypeOf reports the Type of an existing key. It accepts a public key or
// anything with a Public method (such as a crypto.Signer) and returns an
// error for algorithms and sizes this package does not support.
func TypeOf(key crypto.PublicKey) (Type, error) {
	if k, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = k.Public()
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", errors.New("keys: ECDSA public key without a curve")
		}
		switch k.Curve {
		case elliptic.P256():
			return ECDSAP256, nil
		case elliptic.P384():
			return ECDSAP384, nil
		}
		return "", fmt.Errorf("keys: unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", errors.New("keys: RSA public key without a modulus")
		}
		switch bits := k.N.BitLen(); bits {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		default:
			return "", fmt.Errorf("keys: unsupported RSA key size %d bits", bits)
		}
	}
	return "", fmt.Errorf("keys: unsupported key type %T", key)
}
