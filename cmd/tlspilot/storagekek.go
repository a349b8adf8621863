package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// kekGuard keeps the key-encryption key out of a migration: it refuses a
// value that holds the KEK (in any common encoding) or a private key in
// clear. It knows the KEK when --kek names it or the source directory
// has one; path is then its absolute name.
type kekGuard struct {
	path   string
	forms  [][]byte     // the KEK raw, in hex and in base64; nil if unknown
	sealer *keys.Sealer // nil if unknown
}

// loadKEKGuard reads the KEK named by --kek (flagPath), or else the
// source directory's kek if there is one. A KEK named but unreadable is
// an error: the run could not check that it stays out of the copy.
func loadKEKGuard(flagPath, fromDir string) (kekGuard, error) {
	path := flagPath
	if path == "" && fromDir != "" {
		path = filepath.Join(fromDir, "kek")
	}
	if path == "" {
		return kekGuard{}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return kekGuard{}, fmt.Errorf("key-encryption key %s: %w", path, err)
	}
	b, err := readRegular(abs)
	if flagPath == "" && errors.Is(err, fs.ErrNotExist) {
		return kekGuard{}, nil
	}
	if err != nil {
		return kekGuard{}, fmt.Errorf("key-encryption key %s: %w (run as a user who may read it: it is checked never to be copied)", abs, err)
	}
	defer clear(b)
	if len(b) != keys.KEKSize {
		return kekGuard{}, fmt.Errorf("key-encryption key %s: %d bytes, want %d: not a tlspilot KEK", abs, len(b), keys.KEKSize)
	}
	sealer, err := keys.NewSealer(b)
	if err != nil {
		return kekGuard{}, fmt.Errorf("key-encryption key %s: %w", abs, err)
	}
	g := kekGuard{path: abs, sealer: sealer}
	for _, s := range []string{string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
		g.forms = append(g.forms, []byte(s))
	}
	return g, nil
}

// check refuses value v of key in the storage called from if it holds
// the KEK or a private key in clear (tlspilot stores keys sealed only).
func (g kekGuard) check(from, key string, v []byte) error {
	for _, f := range g.forms {
		if bytes.Contains(v, f) {
			return fmt.Errorf("source %s: %s holds the key-encryption key %s: refusing to copy it (no storage may hold the KEK)", from, key, g.path)
		}
	}
	if bytes.Contains(v, []byte("PRIVATE KEY-----")) {
		return fmt.Errorf("source %s: %s holds a private key in clear (a PEM PRIVATE KEY block): refusing to copy it (tlspilot stores keys sealed under the KEK only)", from, key)
	}
	return nil
}

// configLocation is a storage location as the config's storage line
// takes it: a URL without its password (the config refuses one).
func configLocation(loc string) string {
	if !config.IsDatabaseURL(loc) {
		abs, err := filepath.Abs(loc)
		if err != nil {
			return loc
		}
		return abs
	}
	u, err := url.Parse(loc)
	if err != nil {
		return storageName(loc)
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// report prints what was copied and the config lines the nodes need.
func (m *migration) report() {
	n := len(m.copied)
	what := plural(m.done["certificate"], "certificate") + ", " + plural(m.done["account"], "ACME account") + ", " + plural(m.done["record"], "other record")
	if m.opts.dryRun {
		fmt.Fprintf(m.out, "dry run: would copy %s from %s to %s (%s); %d already equal; nothing was written\n",
			plural(m.keys, "record"), m.from.name, m.to.name, what, m.same)
	} else {
		fmt.Fprintf(m.out, "copied %s from %s to %s (%s); %d already equal\n", plural(m.keys, "record"), m.from.name, m.to.name, what, m.same)
		fmt.Fprintf(m.out, "verified: %s read back from %s and from the source, equal byte for byte\n", plural(n, "record"), m.to.name)
	}
	for _, k := range m.kept {
		fmt.Fprintln(m.out, k)
	}
	m.kekAdvice()
}

// kekAdvice says which key-encryption key the private keys are sealed
// under and the config lines that use the destination.
func (m *migration) kekAdvice() {
	kek := m.kek.path
	named := kek
	if kek == "" {
		named = "the key-encryption key the source's nodes use (their kek_file)"
		kek = "/etc/tlspilot/kek"
	}
	fmt.Fprintf(m.out, "\nThe private keys stay sealed under %s; it was not copied.\n", named)
	if m.to.dir == "" {
		fmt.Fprintf(m.out, "The database must never hold it: copy it to every node (owner root, mode 0400; or root:GROUP 0440 after\n"+
			"tlspilot init --user) and set in each node's config, with kek_file the path of that copy:\n")
		fmt.Fprintf(m.out, "  storage = %q\n  kek_file = \"/etc/tlspilot/kek\"  # a copy of %s\n", configLocation(m.opts.to), named)
		return
	}
	own := filepath.Join(m.to.dir, "kek")
	if m.kek.path != "" && sameFile(own, m.kek.path) {
		fmt.Fprintf(m.out, "%s is that key. Set in the config:\n  storage = %q\n", own, m.to.dir)
		return
	}
	if _, err := os.Stat(own); err == nil {
		fmt.Fprintf(m.out, "%s exists and is another key: the copied keys do not open under it; keep kek_file:\n", own)
	} else {
		fmt.Fprintf(m.out, "Copy it into the storage (install -m 0400 %s %s) and set storage alone, or keep it apart:\n", kek, own)
	}
	fmt.Fprintf(m.out, "  storage = %q\n  kek_file = %q\n", m.to.dir, kek)
	if os.Geteuid() == 0 {
		fmt.Fprintf(m.out, "The files in %s belong to root: if tlspilot runs as another user, run tlspilot init --user USER.\n", m.to.dir)
	}
}

// plural writes n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// sameFile reports whether a and b hold the same bytes.
func sameFile(a, b string) bool {
	x, errA := readRegular(a)
	y, errB := readRegular(b)
	defer clear(x)
	defer clear(y)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// readRegular reads the file at path, refusing one that is not a
// regular file: a FIFO (opened without waiting for a writer, which
// blocked the run for ever) or a device.
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (mode %s)", fi.Mode())
	}
	return io.ReadAll(f)
}
