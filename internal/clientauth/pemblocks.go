package clientauth

import (
	"bytes"
	"encoding/pem"
	"fmt"
)

// pemBegin starts every PEM block (RFC 7468, section 2).
const pemBegin = "-----BEGIN"

// pemBlocks returns the contents of the PEM blocks of data of type want.
// Blocks of other types are skipped, as OpenSSL skips them (a file
// holding a CA certificate and its CRL serves as both, and nginx takes
// it). Explanatory text before a block is allowed (as `openssl x509
// -text` writes it, RFC 7468 section 5.2), but a block that does not
// decode, whatever its type, or anything but white space after the last
// block is an error: a file cut short, or one with a block broken in its
// middle, must not pass for a file with fewer blocks. (pem.Decode alone
// skips a broken block and whatever follows the last good one.) The
// error says where, not which file: callers add that.
func pemBlocks(data []byte, want string) ([][]byte, error) {
	var out [][]byte
	off, n := 0, 0 // of rest in data, and blocks seen, for errors
	for rest := data; ; {
		start := bytes.Index(rest, []byte(pemBegin))
		if start < 0 {
			if len(bytes.TrimSpace(rest)) > 0 {
				return nil, fmt.Errorf("data after the last PEM block, at byte %d (cut short?)", off)
			}
			return out, nil
		}
		// Decode this block alone: given more, pem.Decode would skip it
		// if broken and return the next one.
		end := len(rest)
		if next := bytes.Index(rest[start+len(pemBegin):], []byte(pemBegin)); next >= 0 {
			end = start + len(pemBegin) + next
		}
		block, after := pem.Decode(rest[start:end])
		n++
		if block == nil {
			return nil, fmt.Errorf("PEM block %d at byte %d does not decode (cut short or corrupt)", n, off+start)
		}
		if block.Type == want {
			out = append(out, block.Bytes)
		}
		consumed := end - len(after)
		off += consumed
		rest = rest[consumed:]
	}
}
