package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
)

func TestParseType(t *testing.T) {
	tests := []struct {
		in      string
		want    Type
		wantErr bool
	}{
		{"ecdsa-p256", ECDSAP256, false},
		{"ecdsa-p384", ECDSAP384, false},
		{"rsa2048", RSA2048, false},
		{"rsa3072", RSA3072, false},
		{"rsa4096", RSA4096, false},
		{"ECDSA-P256", ECDSAP256, false},
		{"  Rsa4096\t", RSA4096, false},
		{"\nEcDsA-P384 ", ECDSAP384, false},
		{"", "", true},
		{"   ", "", true},
		{"x", "", true},
		{"rsa1024", "", true},
		{"ecdsa-p521", "", true},
		{"ed25519", "", true},
		{"rsa 2048", "", true},
		{"ecdsa_p256", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseType(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseType(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseTypeErrorMessage(t *testing.T) {
	_, err := ParseType("x")
	want := `keys: unknown key type "x" (want one of ecdsa-p256, ecdsa-p384, rsa2048, rsa3072, rsa4096)`
	if err == nil || err.Error() != want {
		t.Errorf("ParseType(\"x\") error = %v, want %s", err, want)
	}
}

func TestIsRSA(t *testing.T) {
	tests := []struct {
		t    Type
		want bool
	}{
		{ECDSAP256, false}, {ECDSAP384, false}, {RSA2048, true}, {RSA3072, true}, {RSA4096, true},
		{"", false}, {"rsa1024", false},
	}
	for _, tt := range tests {
		if got := tt.t.IsRSA(); got != tt.want {
			t.Errorf("%q.IsRSA() = %v, want %v", tt.t, got, tt.want)
		}
	}
}

// TestKeyTypes generates one key of every type (RSA 4096 is slow, so only
// once) and checks TypeOf, CSR and sealing with it.
func TestKeyTypes(t *testing.T) {
	sealer := newTestSealer(t)
	for _, typ := range []Type{ECDSAP256, ECDSAP384, RSA2048, RSA3072, RSA4096} {
		t.Run(string(typ), func(t *testing.T) {
			t.Parallel()
			key, err := Generate(typ)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			for name, k := range map[string]crypto.PublicKey{"signer": key, "public": key.Public()} {
				if got, err := TypeOf(k); err != nil || got != typ {
					t.Errorf("TypeOf(%s) = %q, %v; want %q", name, got, err, typ)
				}
			}
			checkCSR(t, key, []string{"example.com", "www.example.com"}, nil, "example.com")
			checkRoundTrip(t, sealer, key)
		})
	}
}

func TestGenerateUnknown(t *testing.T) {
	for _, typ := range []Type{"", "rsa1024", "ECDSA-P256"} {
		if k, err := Generate(typ); err == nil || k != nil {
			t.Errorf("Generate(%q) = %v, %v; want nil, error", typ, k, err)
		}
	}
}

func TestTypeOfUnsupported(t *testing.T) {
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1536 := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1535), E: 65537}
	tests := []struct {
		name string
		key  crypto.PublicKey
	}{
		{"p521", p521},
		{"p521 public", &p521.PublicKey},
		{"ed25519", edPub},
		{"rsa1536", rsa1536},
		{"nil", nil},
		{"ecdsa without curve", &ecdsa.PublicKey{}},
		{"rsa without modulus", &rsa.PublicKey{}},
		{"nil ecdsa", (*ecdsa.PublicKey)(nil)},
		{"nil rsa", (*rsa.PublicKey)(nil)},
		{"string", "rsa2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := TypeOf(tt.key); err == nil || got != "" {
				t.Errorf("TypeOf = %q, %v; want error", got, err)
			} else if !strings.HasPrefix(err.Error(), "keys: ") {
				t.Errorf("error %q lacks the keys: prefix", err)
			}
		})
	}
}

// mustGenerate returns a new key of type typ or fails the test.
func mustGenerate(t testing.TB, typ Type) crypto.Signer {
	t.Helper()
	key, err := Generate(typ)
	if err != nil {
		t.Fatalf("Generate(%s): %v", typ, err)
	}
	return key
}

// pkcs8 returns the PKCS#8 DER of key or fails the test.
func pkcs8(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("MarshalPKCS8PrivateKey: %v", err)
	}
	return der
}
