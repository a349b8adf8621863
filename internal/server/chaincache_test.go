package server

import (
	"crypto/x509"
	"testing"
	"time"
)

// TestChainCache: a cached chain is returned only while every
// certificate of it is valid, for exactly the certificates presented;
// the cache stays within its bound.
func TestChainCache(t *testing.T) {
	leaf, ca := newTestCert(t, "leaf.test").leaf, newTestCert(t, "ca.test").leaf
	chain := []*x509.Certificate{leaf, ca}
	var c chainCache
	key := chainKey(chain)
	c.put(key, chain)
	now := time.Now()
	for _, tt := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"now", now, true},
		{"before the leaf's notBefore", leaf.NotBefore.Add(-time.Second), false},
		{"after the leaf's notAfter", leaf.NotAfter.Add(time.Second), false},
	} {
		if got := c.get(key, tt.at); (got != nil) != tt.ok {
			t.Errorf("%s: hit %v, want %v", tt.name, got != nil, tt.ok)
		}
	}
	if c.get(chainKey(chain[:1]), now) != nil || c.get(chainKey([]*x509.Certificate{ca, leaf}), now) != nil {
		t.Error("a hit for other certificates than those cached")
	}
	for i := range maxCachedChains + 10 {
		var k [32]byte
		k[0], k[1], k[2] = byte(i), byte(i>>8), 1
		c.put(k, chain)
	}
	if len(c.m) != maxCachedChains {
		t.Errorf("%d entries, want the bound %d", len(c.m), maxCachedChains)
	}
}
