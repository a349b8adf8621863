package keys

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// KEKSize is the size in bytes of a key-encryption key (AES-256).
const KEKSize = 32

// Sealed key format.
const (
	sealedPEMType = "TLSPILOT ENCRYPTED KEY"
	algHeader     = "Alg"
	algAESGCM     = "AES-256-GCM"
	sealVersion   = 1
	nonceSize     = 12
)

// Sealer encrypts private keys with AES-256-GCM under a KEK. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
	id   string
}

// NewSealer builds a Sealer from a raw 32-byte KEK (for tests and other
// storage of the KEK). The Sealer does not retain kek.
func NewSealer(kek []byte) (*Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("keys: KEK is %d bytes, want %d", len(kek), KEKSize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keys: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: new gcm: %w", err)
	}
	mac := hmac.New(sha256.New, kek)
	mac.Write([]byte(kekIDLabel))
	return &Sealer{aead: aead, id: hex.EncodeToString(mac.Sum(nil)[:16])}, nil
}

// kekIDLabel is the message whose HMAC under the KEK identifies it.
const kekIDLabel = "tlspilot key-encryption key id v1"

// ID identifies the KEK without revealing it: the first 16 bytes of
// HMAC-SHA256(KEK, "tlspilot key-encryption key id v1"), in hex. Equal
// KEKs have equal IDs; an ID tells nothing of its KEK (HMAC is a
// pseudo-random function of a 256-bit random key), so storages keep it in
// clear, and two storages can be told sealed under different KEKs
// without either KEK at hand.
func (s *Sealer) ID() string { return s.id }

// additionalData binds a ciphertext to the format version and to the
// caller's aad.
func additionalData(aad string) []byte {
	return append([]byte{sealVersion}, aad...)
}

// SealKey marshals key to PKCS#8 and encrypts it; aad binds the ciphertext
// to its use (e.g. the storage key it is stored under), so a sealed key
// moved to another record does not open. Output is a PEM block of type
// "TLSPILOT ENCRYPTED KEY" with a header "Alg: AES-256-GCM" and body =
// version byte 1 || 12-byte random nonce || ciphertext.
func (s *Sealer) SealKey(key crypto.Signer, aad string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("keys: seal key: %w", err)
	}
	defer clear(der)
	body := make([]byte, 1+nonceSize, 1+nonceSize+len(der)+s.aead.Overhead())
	body[0] = sealVersion
	rand.Read(body[1:]) // never fails (crypto/rand.Read crashes the program instead)
	body = s.aead.Seal(body, body[1:], der, additionalData(aad))
	return pem.EncodeToMemory(&pem.Block{
		Type:    sealedPEMType,
		Headers: map[string]string{algHeader: algAESGCM},
		Bytes:   body,
	}), nil
}

// OpenKey reverses SealKey. A wrong KEK, wrong aad, tampered data, a plain
// "PRIVATE KEY" block or any other malformed input gives an error, never a
// panic.
func (s *Sealer) OpenKey(sealed []byte, aad string) (crypto.Signer, error) {
	block, rest := pem.Decode(sealed)
	if block == nil {
		return nil, errors.New("keys: open key: no PEM block found")
	}
	if block.Type != sealedPEMType {
		return nil, fmt.Errorf("keys: open key: PEM block is %q, want %q (is the key stored unencrypted?)", block.Type, sealedPEMType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("keys: open key: trailing data after PEM block")
	}
	if alg := block.Headers[algHeader]; alg != algAESGCM || len(block.Headers) != 1 {
		return nil, fmt.Errorf("keys: open key: unsupported algorithm %q", alg)
	}
	body := block.Bytes
	if len(body) < 1+nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("keys: open key: sealed data too short (%d bytes)", len(body))
	}
	if body[0] != sealVersion {
		return nil, fmt.Errorf("keys: open key: unsupported version %d", body[0])
	}
	der, err := s.aead.Open(nil, body[1:1+nonceSize], body[1+nonceSize:], additionalData(aad))
	if err != nil {
		return nil, fmt.Errorf("keys: open key: wrong KEK, wrong record, or corrupted data: %w", err)
	}
	defer clear(der)
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: open key: parse PKCS#8: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: open key: %T is not a crypto.Signer", key)
	}
	return signer, nil
}
