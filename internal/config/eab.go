package config

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
)

// EABKey returns the HMAC key of an eab_hmac_file's content as the ACME
// client takes it (RFC 8555 §7.3.4: base64url without padding), trimmed.
// CAs hand the key out in different forms (Google's with "=" padding),
// so base64url with padding and standard base64 ("+", "/") are taken
// too, and written over. It fails on an empty key or one that decodes in
// none of these; the error does not quote the key.
func EABKey(data []byte) (string, error) {
	key := strings.TrimSpace(string(data))
	if key == "" {
		return "", errors.New("is empty: want the HMAC key the CA gave")
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(key); err == nil && len(b) > 0 {
			return base64.RawURLEncoding.EncodeToString(b), nil
		}
	}
	return "", errors.New("does not hold a base64 (or base64url) HMAC key")
}

// eabKey checks the HMAC key in the eab_hmac_file p (already resolved
// and found readable) as serve reads it when the account is registered
// (EABKey): until then check passed any content, and the first
// registration failed. A file the user running check may not read is
// left to the user serve runs as.
func (d *decoder) eabKey(path, p string) {
	data, err := os.ReadFile(p)
	if err != nil {
		return
	}
	if _, err := EABKey(data); err != nil {
		d.errorf(path, "%s %v", p, err)
	}
}
