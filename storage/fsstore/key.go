package fsstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ErrInvalidKey is wrapped by the error every method returns for a key,
// List prefix or lock name that breaks the key syntax of storage.Storage or
// is longer than MaxKeyLen. Such a key is never mapped to a path.
var ErrInvalidKey = errors.New("invalid key")

// Length limits on keys. Longer keys are rejected with ErrInvalidKey.
const (
	// MaxKeyLen is the longest key, List prefix or lock name accepted, in bytes.
	MaxKeyLen = 512
	// MaxSegmentLen is the longest segment (the text between slashes) of a
	// key, in bytes: the longest file name most file systems allow.
	MaxSegmentLen = 255
)

// maxLockBase is the longest lock file name spelled out from the lock name;
// longer names are hashed. Claim and grave names add at most 55 bytes, so
// every name in the locks folder fits in 255 bytes.
const maxLockBase = 200

// checkKey returns an error wrapping ErrInvalidKey unless key is a valid
// key: non-empty slash-separated segments of [a-z0-9._-], none "." or "..".
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w %s: %d bytes long, more than %d", ErrInvalidKey, quote(key), len(key), MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if why := badSegment(seg); why != "" {
			return fmt.Errorf("%w %s: %s", ErrInvalidKey, quote(key), why)
		}
	}
	return nil
}

// badSegment says what is wrong with one segment of a key, or "" if it is
// valid.
func badSegment(seg string) string {
	switch {
	case seg == "":
		return "empty segment (leading, trailing or double '/')"
	case seg == "." || seg == "..":
		return fmt.Sprintf("%q segment", seg)
	case len(seg) > MaxSegmentLen:
		return fmt.Sprintf("segment of %d bytes, more than %d", len(seg), MaxSegmentLen)
	}
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; !keyByte(c) {
			return fmt.Sprintf("character %q not allowed (only a-z 0-9 . _ - /)", c)
		}
	}
	return ""
}

// keyByte reports whether c may appear in a key segment.
func keyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// quote formats a key for an error message, shortened if it is long.
func quote(key string) string {
	const limit = 64
	if len(key) > limit {
		return fmt.Sprintf("%q...", key[:limit])
	}
	return fmt.Sprintf("%q", key)
}

// check returns ctx's error, or an error if key is invalid.
func check(ctxErr error, key string) error {
	if ctxErr != nil {
		return ctxErr
	}
	return checkKey(key)
}

// dataPath maps a valid key to the file holding its value.
func (s *Store) dataPath(key string) string {
	return filepath.Join(s.dataDir, filepath.FromSlash(key))
}

// lockPath maps a valid lock name to its lock file. All lock files live in
// one folder: '/' becomes '+', which keys cannot contain, so distinct names
// never share a file, and names too long for a file name are hashed (with a
// leading '~', which keys cannot contain either).
func (s *Store) lockPath(name string) string {
	base := strings.ReplaceAll(name, "/", "+") + ".lock"
	if len(base) > maxLockBase {
		sum := sha256.Sum256([]byte(name))
		base = "~" + hex.EncodeToString(sum[:]) + ".lock"
	}
	return filepath.Join(s.lockDir, base)
}
