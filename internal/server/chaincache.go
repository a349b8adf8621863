package server

import (
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"
)

// maxCachedChains bounds a site's cache of verified client chains; at
// the bound an arbitrary entry makes room. Only chains that verified
// are kept, so clients without a certificate from the site's CAs cannot
// fill it.
const maxCachedChains = 4096

// chainCache remembers the chains verified for the certificates clients
// presented, so a returning client's chain is not verified again. What
// verification depends on besides the certificates (the site's CAs and
// key usage) is fixed for the site; the time is checked on every hit
// against the validity of every certificate of the chain.
type chainCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]cachedChain
}

type cachedChain struct {
	chain     []*x509.Certificate
	notBefore time.Time // the latest NotBefore of the chain
	notAfter  time.Time // the earliest NotAfter
}

// chainKey identifies what a client presented: all its certificates.
func chainKey(certs []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range certs {
		var n [4]byte
		l := len(c.Raw)
		n[0], n[1], n[2], n[3] = byte(l>>24), byte(l>>16), byte(l>>8), byte(l)
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// get returns the chain verified for key if every certificate of it is
// valid at now, else nil.
func (c *chainCache) get(key [sha256.Size]byte, now time.Time) []*x509.Certificate {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || now.Before(e.notBefore) || now.After(e.notAfter) {
		return nil
	}
	return e.chain
}

// put remembers a verified chain.
func (c *chainCache) put(key [sha256.Size]byte, chain []*x509.Certificate) {
	e := cachedChain{chain: chain, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, x := range chain[1:] {
		if x.NotBefore.After(e.notBefore) {
			e.notBefore = x.NotBefore
		}
		if x.NotAfter.Before(e.notAfter) {
			e.notAfter = x.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]cachedChain)
	}
	if len(c.m) >= maxCachedChains {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}
