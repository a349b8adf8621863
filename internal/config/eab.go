package config

import (
	"encoding/base64"
	"os"
	"strings"
)

// eabKey checks the HMAC key in the eab_hmac_file p (already resolved
// and found readable) as the ACME client reads it when the account is
// registered: trimmed, base64url without padding, not empty. Until then
// check passed a key in standard base64 ("+", "/") or with "=" padding,
// and the first registration failed. A file the user running check may
// not read is left to the user serve runs as. No message quotes the
// key.
func (d *decoder) eabKey(path, p string) {
	data, err := os.ReadFile(p)
	if err != nil {
		return
	}
	key := strings.TrimSpace(string(data))
	if key == "" {
		d.errorf(path, "%s is empty: want the base64url HMAC key the CA gave", p)
		return
	}
	if _, err := base64.RawURLEncoding.DecodeString(key); err == nil {
		return
	}
	hint := ": want the base64url HMAC key the CA gave, without padding"
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if _, err := enc.DecodeString(key); err == nil {
			hint = ": it is base64 with \"=\" padding or with \"+\" and \"/\"; write it in base64url (\"-\" and \"_\") without padding"
			break
		}
	}
	d.errorf(path, "%s does not hold a base64url HMAC key%s", p, hint)
}
