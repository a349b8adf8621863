package ocspclient

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"

	"golang.org/x/crypto/ocsp"
)

// CertID names one certificate for caching: the lower-case hex SHA-256 of
// its issuer's subject, its issuer's public key and its serial number (the
// parts of an OCSP CertID, RFC 6960 §4.1.1, hashed with SHA-256 whatever
// hash the responder uses). It is derived from the certificates only,
// never from a request or a response, so it is safe in a storage key.
type CertID string

// IDOf returns the CertID of leaf as issued by issuer.
func IDOf(leaf, issuer *x509.Certificate) CertID {
	h := sha256.New()
	writeField(h, issuer.RawSubject)
	writeField(h, issuer.RawSubjectPublicKeyInfo)
	writeField(h, leaf.SerialNumber.Bytes())
	return CertID(hex.EncodeToString(h.Sum(nil)))
}

// writeField writes b with its length in front, so that two different
// triples never hash the same bytes.
func writeField(w interface{ Write([]byte) (int, error) }, b []byte) {
	n := len(b)
	_, _ = w.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	_, _ = w.Write(b)
}

// StorageKey returns the storage key of the cached response for id:
// "ocsp/<id>". It passes storage.CheckKey.
func (id CertID) StorageKey() string {
	return "ocsp/" + string(id)
}

// The ASN.1 of an OCSP response down to each SingleResponse's certID (RFC
// 6960 §4.2.1): the ocsp package keeps the issuer hashes to itself.
// encoding/asn1 allows the fields left out at the end of each SEQUENCE.
type (
	ocspResponse struct {
		Status   asn1.Enumerated
		Response struct {
			Type  asn1.ObjectIdentifier
			Bytes []byte
		} `asn1:"explicit,tag:0,optional"`
	}
	basicResponse struct {
		TBS struct {
			Raw         asn1.RawContent
			Version     int `asn1:"optional,default:0,explicit,tag:0"`
			ResponderID asn1.RawValue
			ProducedAt  asn1.RawValue
			Responses   []singleResponse
		}
	}
	singleResponse struct {
		CertID certID
	}
	certID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		KeyHash       []byte
		Serial        *big.Int
	}
)

// matchCertID checks that the first single response in raw about leaf's
// serial (the one the ocsp package returned) also names leaf's issuer:
// issuer name hash and issuer key hash computed with hash, the algorithm
// the response used.
func matchCertID(raw []byte, hash crypto.Hash, leaf, issuer *x509.Certificate) error {
	want, err := expectedCertID(hash, leaf, issuer)
	if err != nil {
		return err
	}
	var resp ocspResponse
	if _, err := asn1.Unmarshal(raw, &resp); err != nil {
		return fmt.Errorf("%w: cert id: %w", ErrMalformed, err)
	}
	var basic basicResponse
	if _, err := asn1.Unmarshal(resp.Response.Bytes, &basic); err != nil {
		return fmt.Errorf("%w: cert id: %w", ErrMalformed, err)
	}
	for _, s := range basic.TBS.Responses {
		if s.CertID.Serial == nil || s.CertID.Serial.Cmp(leaf.SerialNumber) != 0 {
			continue
		}
		if !bytes.Equal(s.CertID.NameHash, want.IssuerNameHash) || !bytes.Equal(s.CertID.KeyHash, want.IssuerKeyHash) {
			return fmt.Errorf("%w: issuer hashes differ", ErrWrongCertificate)
		}
		return nil
	}
	return fmt.Errorf("%w %x", ErrWrongSerial, leaf.SerialNumber)
}

// expectedCertID computes leaf's OCSP CertID hashes with hash, as the
// ocsp package builds them for a request.
func expectedCertID(hash crypto.Hash, leaf, issuer *x509.Certificate) (*ocsp.Request, error) {
	der, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: hash})
	if err != nil {
		return nil, fmt.Errorf("cert id with %v: %w", hash, err)
	}
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return nil, fmt.Errorf("cert id with %v: %w", hash, err)
	}
	return req, nil
}
