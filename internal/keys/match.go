package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// ErrKeyMismatch is returned by CheckMatch for a private key that is not
// the key of the certificate it is kept with. A sealed key is bound to
// the name of the record holding it, not to the certificate, so an older
// sealed key of the same record (a restored backup, a write by whoever
// else can write to the storage) still opens.
var ErrKeyMismatch = errors.New("the private key does not match the certificate")

// CheckMatch returns an error wrapping ErrKeyMismatch when k is not the
// key of the first certificate in chainPEM. A leaf whose public key
// cannot be read is left to whoever uses it (nil): only its
// subjectPublicKeyInfo is read, so that checking thousands of
// certificates does not cost parsing them all.
func CheckMatch(chainPEM []byte, k crypto.Signer) error {
	pub, ok := leafPublicKey(chainPEM)
	if !ok {
		return nil
	}
	if own, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && own.Equal(pub) {
		return nil
	}
	return ErrKeyMismatch
}

// leafPublicKey returns the public key of the first certificate in
// chainPEM, read from its subjectPublicKeyInfo alone.
func leafPublicKey(chainPEM []byte) (crypto.PublicKey, bool) {
	rest := chainPEM
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, false
		}
		if b.Type == "CERTIFICATE" {
			return spkiOf(b.Bytes)
		}
	}
}

// spkiOf parses the subjectPublicKeyInfo of a DER certificate
// (RFC 5280 §4.1).
func spkiOf(der []byte) (crypto.PublicKey, bool) {
	in := cryptobyte.String(der)
	var cert, tbs, spki cryptobyte.String
	if !in.ReadASN1(&cert, asn1.SEQUENCE) || !cert.ReadASN1(&tbs, asn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(asn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(asn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(asn1.SEQUENCE) || // signature
		!tbs.SkipASN1(asn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(asn1.SEQUENCE) || // validity
		!tbs.SkipASN1(asn1.SEQUENCE) || // subject
		!tbs.ReadASN1Element(&spki, asn1.SEQUENCE) {
		return nil, false
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	return pub, err == nil
}
