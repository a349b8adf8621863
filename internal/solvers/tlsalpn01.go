package solvers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/storage"
)

// ALPNProto is the ALPN protocol of tls-alpn-01 (RFC 8737).
const ALPNProto = "acme-tls/1"

// idPeAcmeIdentifier is the acmeIdentifier extension (RFC 8737 §6.1).
var idPeAcmeIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}

// TLSALPN01 presents tls-alpn-01 answers and builds the validation
// certificates. An answer is keyed by its identifier and key
// authorization and held by the owners that presented it (see WithOwner).
//
// The CA's ClientHello names only the identifier, so of two answers for
// one identifier only one can be served: Certificate serves the one
// presented last, and Exclusive lets the issuance flow validate one
// identifier at a time, across every process sharing the storage.
//
// Answers are looked up in the storage through an AnswerIndex, so a flood
// of acme-tls/1 handshakes costs the storage at most one listing per
// LookupInterval while no answer is pending for the name.
type TLSALPN01 struct {
	store *certstore.Store
	index *certstore.AnswerIndex
	log   *slog.Logger
	mu    sync.Mutex
	mem   map[alpnKey]*alpnAnswer // presented here
}

// alpnKey identifies a tls-alpn-01 answer.
type alpnKey struct{ identifier, keyAuth string }

// alpnAnswer is an answer presented by this process.
type alpnAnswer struct {
	cert      *tls.Certificate
	owners    owners
	presented time.Time
}

// NewTLSALPN01 returns a tls-alpn-01 solver keeping answers in store.
func NewTLSALPN01(store *certstore.Store, log *slog.Logger) *TLSALPN01 {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TLSALPN01{store: store, index: store.TLSALPN01Index(LookupInterval, log), log: log, mem: make(map[alpnKey]*alpnAnswer)}
}

// Present stores the answer to ch for the owner of ctx and prepares its
// certificate.
func (s *TLSALPN01) Present(ctx context.Context, ch acmeclient.Challenge) error {
	k := alpnKey{ch.Identifier.Value, ch.KeyAuthorization}
	owner := ownerOf(ctx)
	s.mu.Lock()
	a := s.mem[k]
	s.mu.Unlock()
	if a == nil {
		cert, err := ALPNCert(k.identifier, k.keyAuth)
		if err != nil {
			return err
		}
		a = &alpnAnswer{cert: cert, owners: make(owners)}
	}
	s.mu.Lock()
	if cur := s.mem[k]; cur != nil {
		a = cur // presented meanwhile
	}
	a.owners.add(owner)
	a.presented = time.Now()
	s.mem[k] = a
	s.mu.Unlock()
	if err := s.store.StoreTLSALPN01(ctx, k.identifier, owner, k.keyAuth); err != nil {
		return fmt.Errorf("tls-alpn-01 for %s: store answer: %w", k.identifier, err)
	}
	return nil
}

// CleanUp removes the claim of the owner of ctx on the answer to ch; the
// answer stays while another owner holds it. Other answers for the same
// identifier are left alone.
func (s *TLSALPN01) CleanUp(ctx context.Context, ch acmeclient.Challenge) error {
	k := alpnKey{ch.Identifier.Value, ch.KeyAuthorization}
	owner := ownerOf(ctx)
	s.mu.Lock()
	if a := s.mem[k]; a != nil {
		if a.owners.drop(owner); len(a.owners) == 0 {
			delete(s.mem, k)
		}
	}
	s.mu.Unlock()
	if err := s.store.DeleteTLSALPN01(ctx, k.identifier, owner, k.keyAuth); err != nil {
		return fmt.Errorf("tls-alpn-01 for %s: delete answer: %w", k.identifier, err)
	}
	return nil
}

// Certificate returns the validation certificate for a ClientHello that
// offers only acme-tls/1, or an error if no challenge is pending for the
// name it asks for. identifier is the normalised name (or IP) asked for.
// Of several answers for identifier it serves the one presented last, by
// this or another process sharing the storage: the one whose validation
// holds the identifier's lock (see Exclusive). Only if the storage cannot
// be read does it serve what this process presented last.
func (s *TLSALPN01) Certificate(ctx context.Context, identifier string) (*tls.Certificate, error) {
	a, err := s.stored(ctx, identifier)
	switch {
	case err == nil:
		s.mu.Lock()
		m := s.mem[alpnKey{identifier, a.KeyAuth}]
		s.mu.Unlock()
		if m != nil {
			return m.cert, nil
		}
		return ALPNCert(identifier, a.KeyAuth)
	case !certstore.IsNotExist(err):
		s.log.Warn("load tls-alpn-01 answer", "identifier", identifier, "error", err)
		if m := s.newest(identifier); m != nil {
			return m.cert, nil
		}
	}
	return nil, fmt.Errorf("tls-alpn-01: no challenge pending for %q", identifier)
}

// stored returns the answer for identifier presented last by any
// process, read only when the index says one is stored.
func (s *TLSALPN01) stored(ctx context.Context, identifier string) (certstore.Answer, error) {
	has, err := s.index.Has(ctx, identifier)
	if err != nil {
		return certstore.Answer{}, err
	}
	if !has {
		return certstore.Answer{}, fmt.Errorf("tls-alpn-01 for %s: no answer stored: %w", identifier, fs.ErrNotExist)
	}
	return s.store.LoadTLSALPN01(ctx, identifier)
}

// newest returns the answer for identifier presented here last, or nil.
func (s *TLSALPN01) newest(identifier string) *alpnAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out *alpnAnswer
	for k, m := range s.mem {
		if k.identifier == identifier && (out == nil || m.presented.After(out.presented)) {
			out = m
		}
	}
	return out
}

// Exclusive takes the lock of every identifier of chs's tls-alpn-01
// challenges, so that no other order validates the identifier over
// tls-alpn-01 until release is called. The locks live in the storage, so
// they hold across processes sharing it. They are taken in the order of
// the identifiers, so two orders for overlapping names never wait for each
// other in a circle. release may be called more than once.
func (s *TLSALPN01) Exclusive(ctx context.Context, chs []acmeclient.Challenge) (release func(), err error) {
	var ids []string
	for _, ch := range chs {
		if ch.Type == "tls-alpn-01" {
			ids = append(ids, ch.Identifier.Value)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var (
		leases []storage.Lease
		once   sync.Once
	)
	release = func() {
		once.Do(func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			for i := len(leases) - 1; i >= 0; i-- {
				if err := leases[i].Unlock(uctx); err != nil {
					s.log.Warn("release tls-alpn-01 lock", "identifier", ids[i], "error", err)
				}
			}
		})
	}
	for _, id := range ids {
		start := time.Now()
		l, err := s.store.Storage().Lock(ctx, certstore.ALPNLock(id))
		if err != nil {
			release()
			return nil, fmt.Errorf("tls-alpn-01 for %s: wait for other validations: %w", id, err)
		}
		if d := time.Since(start); d > time.Second {
			s.log.Info("waited for another tls-alpn-01 validation of the same name", "identifier", id, "waited", d.Round(time.Millisecond))
		}
		leases = append(leases, l)
	}
	return release, nil
}

// ALPNIdentifier returns the identifier a tls-alpn-01 ClientHello asks
// for: the SNI, or for IP identifiers (RFC 8738) the address encoded in an
// in-addr.arpa or ip6.arpa name.
func ALPNIdentifier(serverName string) string {
	name := strings.ToLower(strings.TrimSuffix(serverName, "."))
	if ip := reverseIP(name); ip != nil {
		return ip.String()
	}
	return name
}

func reverseIP(name string) net.IP {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		p := strings.Split(rest, ".")
		if len(p) != 4 {
			return nil
		}
		return net.ParseIP(p[3] + "." + p[2] + "." + p[1] + "." + p[0]).To4()
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		p := strings.Split(rest, ".")
		if len(p) != 32 {
			return nil
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(p[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		return net.ParseIP(b.String())
	}
	return nil
}

// ALPNCert builds the self-signed validation certificate for identifier
// carrying the SHA-256 of keyAuth in the acmeIdentifier extension.
func ALPNCert(identifier, keyAuth string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(keyAuth))
	ext, err := asn1.Marshal(sum[:])
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(1),
		Subject:         pkix.Name{CommonName: "tlspilot tls-alpn-01"},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        time.Now().Add(24 * time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: idPeAcmeIdentifier, Critical: true, Value: ext}},
	}
	if ip := net.ParseIP(identifier); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{identifier}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tls-alpn-01 certificate for %s: %w", identifier, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

var (
	_ Solver    = (*TLSALPN01)(nil)
	_ Exclusive = (*TLSALPN01)(nil)
)
