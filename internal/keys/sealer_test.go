package keys

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

// newTestSealer returns a Sealer under a fresh random KEK.
func newTestSealer(t testing.TB) *Sealer {
	t.Helper()
	s, err := NewSealer(randBytes(KEKSize))
	if err != nil {
		t.Fatalf("NewSealer: %v", err)
	}
	return s
}

// mustSeal seals key under aad or fails the test.
func mustSeal(t testing.TB, s *Sealer, key crypto.Signer, aad string) []byte {
	t.Helper()
	sealed, err := s.SealKey(key, aad)
	if err != nil {
		t.Fatalf("SealKey: %v", err)
	}
	return sealed
}

// checkRoundTrip seals and opens key and checks the sealed form leaks
// nothing of the plaintext.
func checkRoundTrip(t *testing.T, s *Sealer, key crypto.Signer) {
	t.Helper()
	const aad = "certificates/acme-v02/example.com/example.com.key"
	sealed := mustSeal(t, s, key, aad)
	got, err := s.OpenKey(sealed, aad)
	if err != nil {
		t.Fatalf("OpenKey: %v", err)
	}
	if k, ok := got.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(key) {
		t.Errorf("OpenKey returned a different key (%T)", got)
	}
	if bytes.Contains(sealed, []byte("PRIVATE KEY")) {
		t.Errorf("sealed output contains \"PRIVATE KEY\":\n%s", sealed)
	}
	block, _ := pem.Decode(sealed)
	der := pkcs8(t, key)
	if bytes.Contains(sealed, der) || bytes.Contains(block.Bytes, der) || bytes.Contains(block.Bytes, der[len(der)-32:]) {
		t.Errorf("sealed output contains the PKCS#8 DER")
	}
	if block.Type != "TLSPILOT ENCRYPTED KEY" || block.Headers["Alg"] != "AES-256-GCM" || block.Bytes[0] != 1 {
		t.Errorf("sealed block = type %q, headers %v, version %d", block.Type, block.Headers, block.Bytes[0])
	}
	if want := 1 + 12 + len(der) + 16; len(block.Bytes) != want {
		t.Errorf("body is %d bytes, want %d", len(block.Bytes), want)
	}
	if again := mustSeal(t, s, key, aad); bytes.Equal(again, sealed) {
		t.Errorf("sealing twice gave identical output (nonce reused?)")
	}
}

func TestNewSealerSize(t *testing.T) {
	for _, n := range []int{0, 1, 16, 24, 31, 33, 64} {
		if s, err := NewSealer(make([]byte, n)); err == nil || s != nil {
			t.Errorf("NewSealer(%d bytes) = %v, %v; want error", n, s, err)
		}
	}
}

func TestNewSealerCopiesKEK(t *testing.T) {
	kek := randBytes(KEKSize)
	s, err := NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustSeal(t, s, mustGenerate(t, ECDSAP256), "a")
	clear(kek)
	if _, err := s.OpenKey(sealed, "a"); err != nil {
		t.Errorf("OpenKey after the caller cleared its KEK: %v", err)
	}
}

// reencode returns sealed with its PEM body replaced by body.
func reencode(t *testing.T, sealed []byte, edit func(b *pem.Block)) []byte {
	t.Helper()
	block, _ := pem.Decode(sealed)
	block.Bytes = bytes.Clone(block.Bytes)
	edit(block)
	return pem.EncodeToMemory(block)
}

func TestOpenKeyRejects(t *testing.T) {
	s := newTestSealer(t)
	key := mustGenerate(t, ECDSAP256)
	sealed := mustSeal(t, s, key, "record-a")
	plain := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(t, key)})
	tests := []struct {
		name  string
		input []byte
		aad   string
		s     *Sealer
	}{
		{"wrong aad", sealed, "record-b", s},
		{"empty aad", sealed, "", s},
		{"another KEK", sealed, "record-a", newTestSealer(t)},
		{"empty input", []byte{}, "record-a", s},
		{"nil input", nil, "record-a", s},
		{"plain private key", plain, "record-a", s},
		{"plain private key body under sealed type", reencode(t, plain, func(b *pem.Block) {
			b.Type = "TLSPILOT ENCRYPTED KEY"
			b.Headers = map[string]string{"Alg": "AES-256-GCM"}
		}), "record-a", s},
		{"missing alg header", reencode(t, sealed, func(b *pem.Block) { b.Headers = nil }), "record-a", s},
		{"other alg", reencode(t, sealed, func(b *pem.Block) { b.Headers["Alg"] = "AES-128-GCM" }), "record-a", s},
		{"extra header", reencode(t, sealed, func(b *pem.Block) { b.Headers["Proc-Type"] = "4,ENCRYPTED" }), "record-a", s},
		{"version 2", reencode(t, sealed, func(b *pem.Block) { b.Bytes[0] = 2 }), "record-a", s},
		{"empty body", reencode(t, sealed, func(b *pem.Block) { b.Bytes = nil }), "record-a", s},
		{"appended byte", reencode(t, sealed, func(b *pem.Block) { b.Bytes = append(b.Bytes, 0) }), "record-a", s},
		{"trailing data", append(bytes.Clone(sealed), "junk"...), "record-a", s},
		{"two blocks", append(bytes.Clone(sealed), sealed...), "record-a", s},
		{"garbage", []byte("\x00\xff-----BEGIN\n"), "record-a", s},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := tt.s.OpenKey(tt.input, tt.aad); err == nil || k != nil {
				t.Errorf("OpenKey = %v, %v; want nil, error", k, err)
			} else if !strings.HasPrefix(err.Error(), "keys: open key: ") {
				t.Errorf("error %q lacks the keys: open key: prefix", err)
			}
		})
	}
	if _, err := s.OpenKey(sealed, "record-a"); err != nil {
		t.Fatalf("OpenKey of the original after the table: %v", err)
	}
}

func TestOpenKeyTampered(t *testing.T) {
	s := newTestSealer(t)
	sealed := mustSeal(t, s, mustGenerate(t, ECDSAP256), "aad")
	block, _ := pem.Decode(sealed)
	for i := range block.Bytes {
		for _, bit := range []byte{0x01, 0x80} {
			in := reencode(t, sealed, func(b *pem.Block) { b.Bytes[i] ^= bit })
			if _, err := s.OpenKey(in, "aad"); err == nil {
				t.Fatalf("flipping bit %#x of body byte %d: OpenKey succeeded", bit, i)
			}
		}
	}
	for n := range len(block.Bytes) {
		in := reencode(t, sealed, func(b *pem.Block) { b.Bytes = b.Bytes[:n] })
		if _, err := s.OpenKey(in, "aad"); err == nil {
			t.Fatalf("body truncated to %d bytes: OpenKey succeeded", n)
		}
	}
	for n := range len(sealed) - 1 { // dropping only the final newline is harmless
		if _, err := s.OpenKey(sealed[:n], "aad"); err == nil {
			t.Fatalf("PEM truncated to %d bytes: OpenKey succeeded", n)
		}
	}
}

func TestOpenKeyRandomGarbage(t *testing.T) {
	s := newTestSealer(t)
	sealed := mustSeal(t, s, mustGenerate(t, ECDSAP256), "aad")
	r := mrand.New(mrand.NewPCG(3, 4))
	for i := range 2000 {
		var in []byte
		switch i % 3 {
		case 0: // raw random bytes
			in = make([]byte, r.IntN(512))
			for j := range in {
				in[j] = byte(r.Uint32())
			}
		case 1: // a well-formed block with a random body
			body := make([]byte, r.IntN(300))
			for j := range body {
				body[j] = byte(r.Uint32())
			}
			in = reencode(t, sealed, func(b *pem.Block) { b.Bytes = body })
		default: // the sealed text with random bytes overwritten
			in = bytes.Clone(sealed)
			for range 1 + r.IntN(4) {
				in[r.IntN(len(in))] = byte(r.Uint32())
			}
		}
		if k, err := s.OpenKey(in, "aad"); err == nil && i%3 != 2 {
			t.Fatalf("input %d: OpenKey = %T, nil error; want error", i, k)
		}
	}
}

// randBytes returns n bytes from crypto/rand.
func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestSealerID: the KEK's id is the same for the same KEK, differs for
// another, and holds none of the KEK's bytes.
func TestSealerID(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, KEKSize)
	a, _ := NewSealer(kek)
	b, _ := NewSealer(bytes.Clone(kek))
	other, _ := NewSealer(bytes.Repeat([]byte{8}, KEKSize))
	if a.ID() != b.ID() || a.ID() == other.ID() || len(a.ID()) != 32 {
		t.Fatalf("ids %q %q %q: want equal for one KEK, different for another, 32 hex digits", a.ID(), b.ID(), other.ID())
	}
	if strings.Contains(a.ID(), hex.EncodeToString(kek[:4])) {
		t.Errorf("id %q shows the KEK", a.ID())
	}
}
