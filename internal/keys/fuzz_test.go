package keys

import (
	"encoding/pem"
	"testing"
)

func FuzzOpenKey(f *testing.F) {
	kek := make([]byte, KEKSize)
	for i := range kek {
		kek[i] = byte(i)
	}
	s, err := NewSealer(kek)
	if err != nil {
		f.Fatal(err)
	}
	key := mustGenerate(f, ECDSAP256)
	sealed := mustSeal(f, s, key, "aad")
	f.Add(sealed, "aad")
	f.Add(sealed, "other")
	f.Add(sealed[:len(sealed)/2], "aad")
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(f, key)}), "aad")
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "TLSPILOT ENCRYPTED KEY", Headers: map[string]string{"Alg": "AES-256-GCM"}, Bytes: []byte{1}}), "aad")
	f.Add([]byte{}, "")
	f.Add([]byte("-----BEGIN TLSPILOT ENCRYPTED KEY-----\nAlg: AES-256-GCM\n\nAQ==\n-----END"), "aad")
	f.Add([]byte("\x00\xff junk"), "aad")
	f.Fuzz(func(t *testing.T, data []byte, aad string) {
		k, err := s.OpenKey(data, aad)
		if (k == nil) == (err == nil) {
			t.Fatalf("OpenKey = %v, %v; want exactly one of key and error", k, err)
		}
	})
}
