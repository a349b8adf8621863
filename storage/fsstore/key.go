package fsstore

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"

	"github.com/tlspilot/tlspilot/storage"
)

// ErrInvalidKey is wrapped by the error every method returns for a key,
// List prefix or lock name that breaks the key syntax of storage.Storage or
// is longer than MaxKeyLen. Such a key is never mapped to a path. It is
// storage.ErrInvalidKey.
var ErrInvalidKey = storage.ErrInvalidKey

// Length limits on keys, those of package storage. Longer keys are rejected
// with ErrInvalidKey.
const (
	// MaxKeyLen is the longest key, List prefix or lock name accepted, in bytes.
	MaxKeyLen = storage.MaxKeyLen
	// MaxSegmentLen is the longest segment (the text between slashes) of a
	// key, in bytes: the longest file name most file systems allow.
	MaxSegmentLen = storage.MaxSegmentLen
)

// maxLockBase is the longest lock file name spelled out from the lock name;
// longer names are hashed. Claim and grave names add at most 55 bytes, so
// every name in the locks folder fits in 255 bytes.
const maxLockBase = 200

// checkKey returns an error wrapping ErrInvalidKey unless key is a valid
// key (storage.CheckKey).
func checkKey(key string) error { return storage.CheckKey(key) }

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
