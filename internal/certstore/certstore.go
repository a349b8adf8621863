// Package certstore is the record layout of tlspilot's storage: the only
// place that knows storage key names and how records are encoded. Private
// keys pass through here only sealed by a keys.Sealer.
package certstore

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
)

// Store reads and writes tlspilot's records in a storage.Storage.
type Store struct {
	s      storage.Storage
	sealer *keys.Sealer
}

// New returns a Store over s that seals private keys with sealer.
func New(s storage.Storage, sealer *keys.Sealer) *Store {
	return &Store{s: s, sealer: sealer}
}

// Storage returns the underlying storage, for locking.
func (st *Store) Storage() storage.Storage { return st.s }

// CertID returns the stable identifier of the certificate for names (in
// any order) with key type kt. It is safe as a storage key segment.
func CertID(names []string, kt keys.Type) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	h := sha256.Sum256([]byte(strings.Join(sorted, ",") + "|" + string(kt)))
	first := safeSegment(sorted[0], 60)
	return first + "-" + string(kt) + "-" + hex.EncodeToString(h[:6])
}

// CAID returns the identifier of a CA directory URL, safe as a key segment.
func CAID(directory string) string {
	h := sha256.Sum256([]byte(directory))
	host := "ca"
	if u, err := url.Parse(directory); err == nil && u.Hostname() != "" {
		host = safeSegment(u.Hostname(), 60)
	}
	return host + "-" + hex.EncodeToString(h[:6])
}

// safeSegment maps s onto [a-z0-9.-_] (so it is a valid key segment),
// bounded to max bytes. Uniqueness comes from the hash added by callers.
func safeSegment(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c == '.':
			if b.Len() > 0 {
				b.WriteByte(c)
			}
		case c == '*':
			b.WriteString("wildcard_")
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), ".")
	if out == "" {
		out = "x"
	}
	return out
}

func hashKey(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (st *Store) loadJSON(ctx context.Context, key string, v any) error {
	b, err := st.s.Load(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w: %w", key, ErrDamaged, err)
	}
	return nil
}

func (st *Store) storeJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return st.s.Store(ctx, key, b)
}

// ErrDamaged marks the error of a record that was read but cannot be
// used: it does not decode, or its private key does not open. Any other
// error of a read is the storage's (unreachable, refused).
var ErrDamaged = errors.New("damaged record")

// IsNotExist reports whether err means a record is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// seal encrypts key bound to the record key it is stored under.
func (st *Store) seal(k crypto.Signer, recordKey string) (string, error) {
	b, err := st.sealer.SealKey(k, recordKey)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (st *Store) open(sealed, recordKey string) (crypto.Signer, error) {
	if sealed == "" {
		return nil, fmt.Errorf("%s: %w: no private key", recordKey, ErrDamaged)
	}
	if st.sealer == nil {
		return nil, fmt.Errorf("open private key of %s: no key-encryption key in this process", recordKey)
	}
	k, err := st.sealer.OpenKey([]byte(sealed), recordKey)
	if err != nil {
		return nil, fmt.Errorf("open private key of %s: %w: %w", recordKey, ErrDamaged, err)
	}
	return k, nil
}
