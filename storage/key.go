package storage

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidKey is wrapped by the error a backend returns for a key, List
// prefix or lock name that breaks the key syntax of Storage or is longer
// than MaxKeyLen. Such a key is never mapped to a file or a row.
var ErrInvalidKey = errors.New("invalid key")

// Length limits on keys, the same for every backend, so that a storage
// copied from one backend to another keeps every key.
const (
	// MaxKeyLen is the longest key, List prefix or lock name accepted, in bytes.
	MaxKeyLen = 512
	// MaxSegmentLen is the longest segment (the text between slashes) of a
	// key, in bytes: the longest file name most file systems allow.
	MaxSegmentLen = 255
)

// CheckKey returns an error wrapping ErrInvalidKey unless key is a valid
// key of Storage: non-empty slash-separated segments of [a-z0-9._-], none
// "." or "..", no segment longer than MaxSegmentLen and no key longer than
// MaxKeyLen. The error quotes the key (shortened) and says what is wrong.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w %s: %d bytes long, more than %d", ErrInvalidKey, quoteKey(key), len(key), MaxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if why := badSegment(seg); why != "" {
			return fmt.Errorf("%w %s: %s", ErrInvalidKey, quoteKey(key), why)
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

// quoteKey formats a key for an error message, shortened if it is long.
func quoteKey(key string) string {
	const limit = 64
	if len(key) > limit {
		return fmt.Sprintf("%q...", key[:limit])
	}
	return fmt.Sprintf("%q", key)
}
