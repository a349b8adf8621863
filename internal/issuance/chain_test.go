package issuance

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// testCA is a root and an intermediate that issue leaves for tests.
type testCA struct {
	rootKey, interKey crypto.Signer
	root, inter       *x509.Certificate
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{rootKey: newKey(t), interKey: newKey(t)}
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	ca.root = issue(t, rootTmpl, rootTmpl, ca.rootKey.Public(), ca.rootKey)
	interTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test intermediate"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	ca.inter = issue(t, interTmpl, ca.root, ca.interKey.Public(), ca.rootKey)
	return ca
}

// leaf issues, from the intermediate, a leaf for pub naming names (DNS
// names and IP addresses), valid from nb to na.
func (ca *testCA) leaf(t *testing.T, pub crypto.PublicKey, names []string, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: nb, NotAfter: na,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return issue(t, tmpl, ca.inter, pub, ca.interKey)
}

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func issue(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pemOf encodes certs as a PEM chain.
func pemOf(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func block(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestCheckValidity(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name   string
		nb, na time.Time
		ok     bool
	}{
		{"backdated an hour (Let's Encrypt)", now.Add(-time.Hour), now.Add(90 * day), true},
		{"starts now (no backdating)", now, now.Add(90 * day), true},
		{"starts 5 minutes ahead (CA clock ahead)", now.Add(5 * time.Minute), now.Add(90 * day), true},
		{"starts just within the allowance", now.Add(notBeforeSkew), now.Add(90 * day), true},
		{"short-lived, seconds left", now.Add(-time.Second), now.Add(4 * time.Second), true},
		{"starts beyond the allowance", now.Add(notBeforeSkew + time.Second), now.Add(90 * day), false},
		{"not yet valid, a year ahead", now.Add(365 * day), now.Add(455 * day), false},
		{"already expired", now.Add(-48 * time.Hour), now.Add(-day), false},
		{"expires now", now.Add(-time.Hour), now, false},
		{"expires within the margin", now.Add(-time.Hour), now.Add(expiryMargin / 2), false},
		{"NotAfter before NotBefore", now.Add(day), now.Add(-day), false},
		{"NotAfter equal to NotBefore", now.Add(day), now.Add(day), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkValidity(&x509.Certificate{NotBefore: tc.nb, NotAfter: tc.na}, now)
			if (err == nil) != tc.ok {
				t.Errorf("checkValidity(NotBefore %v, NotAfter %v) = %v, want ok=%v", tc.nb, tc.na, err, tc.ok)
			}
		})
	}
}

func TestParseChain(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	leaf := ca.leaf(t, newKey(t).Public(), []string{"a.example"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	good := pemOf(leaf, ca.inter)
	for _, tc := range []struct {
		name  string
		chain []byte
		want  string // part of the error; empty when the chain is accepted
	}{
		{"leaf and intermediate", good, ""},
		{"whitespace around and between blocks", append(append([]byte("\n\n"), bytes.ReplaceAll(good, []byte("-----\n-----"), []byte("-----\n\r\n\t-----"))...), " \n"...), ""},
		{"CRLF line ends", bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), ""},
		{"empty", nil, "no certificate"},
		{"whitespace only", []byte(" \n\t"), "no certificate"},
		{"not PEM", []byte("\x00\xffgarbage"), "not PEM"},
		{"explanatory text before", append([]byte("subject=CN = a.example\n"), good...), "not PEM"},
		{"junk after the chain", append(good[:len(good):len(good)], "trailing junk\n"...), "not PEM after"},
		{"garbage certificate after the leaf", append(pemOf(leaf), block("CERTIFICATE", []byte("not DER at all"))...), "parse certificate 2"},
		{"private key in the chain", append(pemOf(leaf), block("PRIVATE KEY", []byte{1, 2, 3})...), `"PRIVATE KEY" block`},
		{"unterminated block", append(pemOf(leaf), "-----BEGIN CERTIFICATE-----\nAAAA\n"...), "malformed"},
		{"malformed block hiding before a good one", append(append(pemOf(leaf), "-----BEGIN CERTIFICATE\nAAAA\n"...), pemOf(ca.inter)...), "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certs, clean, err := parseChain(tc.chain)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("parseChain: %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseChain: %v", err)
			}
			if len(certs) != 2 || !certs[0].Equal(leaf) || !certs[1].Equal(ca.inter) {
				t.Errorf("parseChain returned %d certificates, want the leaf and the intermediate", len(certs))
			}
			if !bytes.Equal(clean, good) {
				t.Errorf("re-encoded chain:\n%s\nwant:\n%s", clean, good)
			}
		})
	}
}

func TestCheckLinks(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	now := time.Now()
	leaf := ca.leaf(t, newKey(t).Public(), []string{"a.example"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	forged := other.leaf(t, leaf.PublicKey, []string{"a.example"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	selfKey := newKey(t)
	selfTmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{"a.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	self := issue(t, selfTmpl, selfTmpl, selfKey.Public(), selfKey)
	for _, tc := range []struct {
		name  string
		certs []*x509.Certificate
		ok    bool
	}{
		{"leaf alone", []*x509.Certificate{leaf}, true},
		{"leaf, intermediate", []*x509.Certificate{leaf, ca.inter}, true},
		{"leaf, intermediate, root", []*x509.Certificate{leaf, ca.inter, ca.root}, true},
		{"self-signed leaf repeated (a tool's full chain)", []*x509.Certificate{self, self}, true},
		{"leaf of another issuer before the intermediate", []*x509.Certificate{forged, ca.inter}, false},
		{"intermediate missing", []*x509.Certificate{leaf, ca.root}, false},
		{"reversed", []*x509.Certificate{ca.inter, leaf}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkLinks(tc.certs); (err == nil) != tc.ok {
				t.Errorf("checkLinks: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	pub := newKey(t).Public()
	requested := []string{"a.example", "*.b.example", "192.0.2.1", "2001:db8::1"}
	for _, tc := range []struct {
		name string
		sans []string
		want string // part of the error; empty when accepted
	}{
		{"exactly the names", requested, ""},
		{"other order, other case", []string{"2001:DB8:0::1", "*.B.example", "192.0.2.1", "A.Example"}, ""},
		{"superset: a DNS name", append([]string{"nobody-configured.example"}, requested...), "also names nobody-configured.example"},
		{"superset: an IP address", append([]string{"192.0.2.99"}, requested...), "also names 192.0.2.99"},
		{"subset", []string{"a.example", "*.b.example", "192.0.2.1"}, "does not cover 2001:db8::1"},
		{"a name under the wildcard, not the wildcard", []string{"a.example", "x.b.example", "192.0.2.1", "2001:db8::1"}, "does not cover *.b.example"},
		{"the wildcard's base name added", append([]string{"b.example"}, requested...), "also names b.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := ca.leaf(t, pub, tc.sans, now.Add(-time.Hour), now.Add(24*time.Hour))
			err := checkNames(leaf, requested)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkNames(%v): %v, want %q", tc.sans, err, tc.want)
			}
		})
	}
	// A wildcard is compared literally both ways: a certificate for it
	// does not cover a name under it that was requested.
	leaf := ca.leaf(t, pub, []string{"*.b.example"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err := checkNames(leaf, []string{"x.b.example"}); err == nil {
		t.Error("a certificate for *.b.example was accepted for x.b.example")
	}
}

// TestCheckPublic: the checks together, on what the CA may send.
func TestCheckPublic(t *testing.T) {
	ca := newTestCA(t)
	other := newTestCA(t)
	now := time.Now()
	key := newKey(t)
	names := []string{"a.example", "b.example"}
	leaf := ca.leaf(t, key.Public(), names, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	good := pemOf(leaf, ca.inter)
	for _, tc := range []struct {
		name  string
		chain []byte
		want  string // part of the error; empty when accepted
	}{
		{"good", good, ""},
		{"good, loosely spaced", append(append([]byte("\n"), bytes.ReplaceAll(good, []byte("-----\n-----"), []byte("-----\n\n\n-----"))...), "\n\n"...), ""},
		{"garbage intermediate", append(pemOf(leaf), block("CERTIFICATE", []byte("not DER at all"))...), "parse certificate 2"},
		{"superset of names", pemOf(ca.leaf(t, key.Public(), append([]string{"nobody-configured.example"}, names...), now.Add(-time.Hour), now.Add(24*time.Hour)), ca.inter), "also names nobody-configured.example"},
		{"already expired", pemOf(ca.leaf(t, key.Public(), names, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), ca.inter), "expired"},
		{"not yet valid", pemOf(ca.leaf(t, key.Public(), names, now.Add(365*24*time.Hour), now.Add(455*24*time.Hour)), ca.inter), "not valid before"},
		{"NotAfter before NotBefore", pemOf(ca.leaf(t, key.Public(), names, now.Add(24*time.Hour), now.Add(-24*time.Hour)), ca.inter), "never valid"},
		{"leaf from another issuer", pemOf(other.leaf(t, key.Public(), names, now.Add(-time.Hour), now.Add(24*time.Hour)), ca.inter), "not signed by"},
		{"another key", pemOf(ca.leaf(t, newKey(t).Public(), names, now.Add(-time.Hour), now.Add(24*time.Hour)), ca.inter), "not for this private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Check(tc.chain, key, names)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Check: %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if c.ChainPEM != string(good) {
				t.Errorf("stored chain is not the re-encoded certificates:\n%s", c.ChainPEM)
			}
			if c.Key != key || !c.NotAfter.Equal(leaf.NotAfter) {
				t.Errorf("result: key %v, NotAfter %v", c.Key, c.NotAfter)
			}
		})
	}
}

// TestCheckImported: an imported certificate (a certbot lineage) may have
// expired or name more than the names it is imported for, as Import
// accepted before the checks of certificates from the CA grew stricter;
// its chain and key are checked as strictly as theirs.
func TestCheckImported(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	key := newKey(t)
	names := []string{"a.example"}
	for _, tc := range []struct {
		name  string
		chain []byte
		want  string // part of the error; empty when accepted
	}{
		{"expired", pemOf(ca.leaf(t, key.Public(), names, now.Add(-90*24*time.Hour), now.Add(-24*time.Hour)), ca.inter), ""},
		{"more names", pemOf(ca.leaf(t, key.Public(), append([]string{"b.example"}, names...), now.Add(-time.Hour), now.Add(24*time.Hour)), ca.inter), ""},
		{"a name missing", pemOf(ca.leaf(t, key.Public(), []string{"b.example"}, now.Add(-time.Hour), now.Add(24*time.Hour)), ca.inter), "does not cover a.example"},
		{"garbage intermediate", append(pemOf(ca.leaf(t, key.Public(), names, now.Add(-time.Hour), now.Add(24*time.Hour))), block("CERTIFICATE", []byte("junk"))...), "parse certificate 2"},
		{"another key", pemOf(ca.leaf(t, newKey(t).Public(), names, now.Add(-time.Hour), now.Add(24*time.Hour)), ca.inter), "not for this private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CheckImported(tc.chain, key, names)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("CheckImported: %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil || c.Key != key || c.ChainPEM != string(tc.chain) {
				t.Errorf("CheckImported: %v, key %v", err, c.Key)
			}
		})
	}
}
