package certstore

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

// Challenge answers are stored under hashes of the token or identifier,
// the key authorization and the owner, so nothing a client sends is ever
// used as a key. Each owner (the certificate whose order presented the
// answer) has its own record: one owner's clean-up never removes an answer
// another still needs, also when they run in different processes.
//
//	challenges/http-01/<token>/<owner>
//	challenges/tls-alpn-01/<identifier>/<key authorization, owner>
//
// A tls-alpn-01 validation names only the identifier, so all answers for
// one identifier sit under one prefix, to be listed together.

func httpDir(token string) string { return "challenges/http-01/" + hashKey(token) }
func httpKey(token, owner string) string {
	return httpDir(token) + "/" + hashKey(owner)
}

func alpnDir(identifier string) string { return "challenges/tls-alpn-01/" + hashKey(identifier) }
func alpnKey(identifier, keyAuth, owner string) string {
	// A key authorization never contains a newline.
	return alpnDir(identifier) + "/" + hashKey(keyAuth+"\n"+owner)
}

// ALPNLock is the name of the lock held while a tls-alpn-01 challenge for
// identifier is being validated: only one answer for an identifier can be
// served at a time.
func ALPNLock(identifier string) string { return "challenge/tls-alpn-01/" + hashKey(identifier) }

// Answer is a stored challenge answer.
type Answer struct {
	KeyAuth   string    `json:"key_auth"`
	Presented time.Time `json:"presented"`
}

// StoreHTTP01 saves owner's answer to token.
func (st *Store) StoreHTTP01(ctx context.Context, token, owner, keyAuth string) error {
	return st.storeJSON(ctx, httpKey(token, owner), Answer{KeyAuth: keyAuth, Presented: time.Now().UTC()})
}

// LoadHTTP01 returns the key authorization answering token, whoever
// presented it. No answer gives an error satisfying IsNotExist.
func (st *Store) LoadHTTP01(ctx context.Context, token string) (string, error) {
	as, err := st.answers(ctx, httpDir(token))
	if err != nil {
		return "", err
	}
	return as[0].KeyAuth, nil
}

// DeleteHTTP01 removes owner's answer to token, leaving other owners',
// and the token's folder once it holds none (see pruneFolder).
func (st *Store) DeleteHTTP01(ctx context.Context, token, owner string) error {
	if err := st.s.Delete(ctx, httpKey(token, owner)); err != nil {
		return err
	}
	st.pruneFolder(ctx, httpDir(token))
	return nil
}

// PruneChallengeFolders removes the empty folders of challenge answers
// (left by a version that did not prune them, or by a crash), on a
// storage that keeps folders, and returns how many it removed.
func (st *Store) PruneChallengeFolders(ctx context.Context) (int, error) {
	p, ok := st.s.(storage.FolderPruner)
	if !ok {
		return 0, nil
	}
	total := 0
	for _, prefix := range []string{"challenges/http-01", "challenges/tls-alpn-01"} {
		n, err := p.PruneEmptyFolders(ctx, prefix)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneFolder removes the folder of a challenge's answers once it holds
// none, on a storage that keeps folders (storage.FolderPruner): every
// challenge has a new token, and each token's folder would otherwise
// stay for ever, slowing the listing of the answers. A failure is
// harmless (the folder stays) and not reported.
func (st *Store) pruneFolder(ctx context.Context, dir string) {
	if p, ok := st.s.(storage.FolderPruner); ok {
		_ = p.PruneFolder(ctx, dir)
	}
}

// StoreTLSALPN01 saves owner's answer keyAuth for identifier, stamped
// with the current time.
func (st *Store) StoreTLSALPN01(ctx context.Context, identifier, owner, keyAuth string) error {
	return st.storeJSON(ctx, alpnKey(identifier, keyAuth, owner), Answer{KeyAuth: keyAuth, Presented: time.Now().UTC()})
}

// LoadTLSALPN01 returns the answer for identifier presented last, by any
// owner. No answer gives an error satisfying IsNotExist.
func (st *Store) LoadTLSALPN01(ctx context.Context, identifier string) (Answer, error) {
	as, err := st.answers(ctx, alpnDir(identifier))
	if err != nil {
		return Answer{}, err
	}
	return as[0], nil
}

// DeleteTLSALPN01 removes owner's answer keyAuth for identifier, leaving
// every other answer.
func (st *Store) DeleteTLSALPN01(ctx context.Context, identifier, owner, keyAuth string) error {
	if err := st.s.Delete(ctx, alpnKey(identifier, keyAuth, owner)); err != nil {
		return err
	}
	st.pruneFolder(ctx, alpnDir(identifier))
	return nil
}

// answers returns the answers stored below dir, the last presented first;
// none gives an error satisfying IsNotExist. A record removed while it is
// read is skipped; an unreadable one is an error only if no other answer
// is found.
func (st *Store) answers(ctx context.Context, dir string) ([]Answer, error) {
	keys, err := st.s.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	var (
		out   []Answer
		first error
	)
	for _, k := range keys {
		var a Answer
		if err := st.loadJSON(ctx, k, &a); err != nil {
			if !IsNotExist(err) && first == nil {
				first = err
			}
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		if first != nil {
			return nil, first
		}
		return nil, fmt.Errorf("%s: no answer: %w", dir, fs.ErrNotExist)
	}
	slices.SortStableFunc(out, func(a, b Answer) int { return b.Presented.Compare(a.Presented) })
	return out, nil
}
