package tlspilot

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/tempcert"
)

// site is one managed set of names, with a certificate per key type.
type site struct {
	names []string
	certs []*entry // in Config.KeyTypes order
	ec    *entry   // preferred for clients that support ECDSA
	rsa   *entry   // for clients that do not
}

// nameTable maps names to sites for the handshake path.
type nameTable struct {
	mu    sync.RWMutex
	exact map[string]*site
	wild  map[string]*site // "*.example.com" stored under "example.com"
}

func newNameTable() *nameTable {
	return &nameTable{exact: make(map[string]*site), wild: make(map[string]*site)}
}

// add registers the names of sites, all or none: it fails, changing
// nothing, if a name already belongs to another site, or to two of
// sites (check).
func (t *nameTable) add(sites ...*site) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.checkLocked(sites); err != nil {
		return err
	}
	for _, s := range sites {
		for _, n := range s.names {
			if len(n) > 2 && n[:2] == "*." {
				t.wild[n[2:]] = s
			} else {
				t.exact[n] = s
			}
		}
	}
	return nil
}

// check returns the error add would return now, changing nothing.
func (t *nameTable) check(sites ...*site) error {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.checkLocked(sites)
}

// checkLocked is check with t.mu held.
func (t *nameTable) checkLocked(sites []*site) error {
	given := make(map[string]*site)
	for _, s := range sites {
		for _, n := range s.names {
			if other := given[n]; other != nil && other != s {
				return fmt.Errorf("%s is in two of the certificates given, %v and %v", n, other.names, s.names)
			}
			given[n] = s
			m, key := t.exact, n
			if len(n) > 2 && n[:2] == "*." {
				m, key = t.wild, n[2:]
			}
			if other, ok := m[key]; ok && other != s {
				return fmt.Errorf("%v: %s is already managed with %v", s.names, n, other.names)
			}
		}
	}
	return nil
}

// lookup finds the site for a server name without allocating: the name is
// lower-cased into a stack buffer only when it has upper-case letters.
func (t *nameTable) lookup(name string) *site {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	var buf [256]byte
	if len(name) > len(buf) {
		return nil
	}
	b := buf[:0]
	lower := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			lower = false
			break
		}
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !lower {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		if s := t.exact[string(b)]; s != nil {
			return s
		}
		for i := 0; i < len(b); i++ {
			if b[i] == '.' {
				return t.wild[string(b[i+1:])]
			}
		}
		return nil
	}
	if s := t.exact[name]; s != nil {
		return s
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			return t.wild[name[i+1:]]
		}
	}
	return nil
}

// pick chooses the certificate entry for a client.
func (s *site) pick(hello *tls.ClientHelloInfo) *entry {
	if s.ec == nil {
		return s.rsa
	}
	if s.rsa == nil || supportsECDSA(hello) {
		return s.ec
	}
	return s.rsa
}

// supportsECDSA reports whether the client can verify an ECDSA
// certificate: for TLS 1.3 from its signature algorithms, for TLS 1.2 from
// its cipher suites.
func supportsECDSA(hello *tls.ClientHelloInfo) bool {
	sigOK := len(hello.SignatureSchemes) == 0
	for _, s := range hello.SignatureSchemes {
		if s == tls.ECDSAWithP256AndSHA256 || s == tls.ECDSAWithP384AndSHA384 {
			sigOK = true
			break
		}
	}
	if !sigOK {
		return false
	}
	for _, v := range hello.SupportedVersions {
		if v == tls.VersionTLS13 {
			return true
		}
	}
	for _, c := range hello.CipherSuites {
		switch c {
		case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:
			return true
		}
	}
	return false
}

// tempRenewBefore is how long before it expires a temporary certificate
// is replaced by a new one, so that a name waiting for its first
// certificate for weeks is never served an expired stand-in.
const tempRenewBefore = 24 * time.Hour

// serving returns the certificate to present for e: the real one, or a
// temporary self-signed one until the first is obtained, made again
// before it expires. Both have Leaf set: the real one's is parsed at its
// first use (withLeaf), the temporary one's when it is made
// (tempcert.New).
func (e *entry) serving(tempKey *ecdsa.PrivateKey) (*tls.Certificate, error) {
	if c := e.cur.Load(); c != nil {
		if c.Leaf == nil {
			return e.withLeaf(c), nil
		}
		return c, nil
	}
	old := e.temp.Load()
	if old != nil && time.Now().Before(old.Leaf.NotAfter.Add(-tempRenewBefore)) {
		return old, nil
	}
	c, err := tempcert.New(e.site.names, tempKey, "the CA")
	if err != nil {
		return nil, err
	}
	e.temp.CompareAndSwap(old, c)
	return e.temp.Load(), nil
}

func newTempKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// interner shares identical DER certificates (intermediates) between the
// chains held in memory.
type interner struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (in *interner) intern(der []byte) []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.m == nil {
		in.m = make(map[string][]byte)
	}
	if v, ok := in.m[string(der)]; ok {
		return v
	}
	in.m[string(der)] = der
	return der
}

// withLeaf returns c, the certificate in service, with its Leaf parsed,
// and keeps that in service for the next handshakes: once per
// certificate, at its first use rather than at start-up (10,000
// certificates would take a quarter of a second more to load, and hold
// 2.7 KiB more each before any is used). Callers of GetCertificate find
// Leaf set, as autocert's do. A leaf that does not parse is served
// without (as before Leaf was kept).
func (e *entry) withLeaf(c *tls.Certificate) *tls.Certificate {
	if e.noLeaf.Load() == c {
		return c // parsed and refused already
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		e.noLeaf.Store(c)
		return c
	}
	p := *c
	p.Leaf = leaf
	if e.cur.CompareAndSwap(c, &p) {
		return &p
	}
	if now := e.cur.Load(); now != nil && now.Leaf != nil {
		return now // another handshake parsed it first
	}
	return &p
}

// toTLS builds the in-memory certificate from a stored record, sharing
// intermediates through in; its Leaf is parsed at first use (withLeaf).
func toTLS(c certstore.Cert, in *interner) (*tls.Certificate, error) {
	var chain [][]byte
	rest := []byte(c.ChainPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if len(chain) == 0 {
			chain = append(chain, b.Bytes)
		} else {
			chain = append(chain, in.intern(b.Bytes))
		}
	}
	if len(chain) == 0 {
		return nil, errors.New("no certificate in stored chain")
	}
	return &tls.Certificate{Certificate: chain[:len(chain):len(chain)], PrivateKey: c.Key}, nil
}

// remove unregisters the site that name belongs to, with all its names,
// and returns it (nil if name is not managed).
func (t *nameTable) remove(name string) *site {
	t.mu.Lock()
	defer t.mu.Unlock()
	var s *site
	if len(name) > 2 && name[:2] == "*." {
		s = t.wild[name[2:]]
	} else {
		s = t.exact[name]
	}
	if s == nil {
		return nil
	}
	for _, n := range s.names {
		if len(n) > 2 && n[:2] == "*." {
			delete(t.wild, n[2:])
		} else {
			delete(t.exact, n)
		}
	}
	return s
}
