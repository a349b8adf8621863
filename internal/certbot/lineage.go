package certbot

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// DefaultDir is certbot's configuration directory on Linux.
const DefaultDir = "/etc/letsencrypt"

// Lineage is one certificate lineage of certbot: its renewal conf, the
// live/ files (usually symlinks into archive/) and the certificate and
// key they point at now.
type Lineage struct {
	// Name is the lineage name: the conf file name without ".conf".
	Name string
	// Conf is the parsed renewal conf.
	Conf *Conf
	// Cert, Chain, Fullchain and Privkey are the live/ paths the conf
	// names ("cert", "chain", "fullchain", "privkey"), as written.
	Cert, Chain, Fullchain, Privkey string
	// ArchiveDir is the conf's "archive_dir".
	ArchiveDir string
	// Server is the ACME directory URL ("renewalparams.server").
	Server string
	// Account is certbot's account id ("renewalparams.account").
	Account string
	// Authenticator is "standalone", "webroot", "nginx", "dns-…"
	// ("renewalparams.authenticator").
	Authenticator string

	// ChainPEM is the content of Fullchain: the leaf and its chain.
	ChainPEM []byte
	// Key is the private key in Privkey.
	Key crypto.Signer
	// Leaf is the first certificate of ChainPEM.
	Leaf *x509.Certificate
}

// Names returns the names the current certificate covers: its DNS names
// then its IP addresses, in certificate order.
func (l *Lineage) Names() []string {
	names := append([]string(nil), l.Leaf.DNSNames...)
	for _, ip := range l.Leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// Param returns a value of [renewalparams] ("" if absent).
func (l *Lineage) Param(key string) string { return l.Conf.Str("renewalparams", key) }

// ReadDir reads every lineage of the certbot directory dir, in name
// order. A lineage that cannot be read is left out and its error, naming
// the file, line and key, is among the errors returned; the error is
// non-nil only when dir itself cannot be read.
func ReadDir(dir string) ([]*Lineage, []error, error) {
	confs, err := filepath.Glob(filepath.Join(dir, "renewal", "*.conf"))
	if err != nil {
		return nil, nil, fmt.Errorf("list renewal confs: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "renewal")); err != nil {
		return nil, nil, fmt.Errorf("%s is not a certbot directory: %w", dir, err)
	}
	sort.Strings(confs)
	var out []*Lineage
	var errs []error
	for _, p := range confs {
		l, err := ReadLineage(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l)
	}
	return out, errs, nil
}

// ReadLineage reads the lineage of the renewal conf at path and the
// certificate and key its live/ files point at now.
func ReadLineage(path string) (*Lineage, error) {
	c, err := ReadConf(path)
	if err != nil {
		return nil, err
	}
	l := &Lineage{Name: strings.TrimSuffix(filepath.Base(path), ".conf"), Conf: c,
		Cert: c.Str("", "cert"), Chain: c.Str("", "chain"), Fullchain: c.Str("", "fullchain"),
		Privkey: c.Str("", "privkey"), ArchiveDir: c.Str("", "archive_dir"),
		Server: c.Str("renewalparams", "server"), Account: c.Str("renewalparams", "account"),
		Authenticator: c.Str("renewalparams", "authenticator")}
	for _, k := range []string{"fullchain", "privkey"} {
		if c.Str("", k) == "" {
			return nil, c.Errorf("", k, "missing: certbot writes it in every renewal conf")
		}
	}
	if l.ChainPEM, err = l.readLive("fullchain"); err != nil {
		return nil, err
	}
	keyPEM, err := l.readLive("privkey")
	if err != nil {
		return nil, err
	}
	if l.Leaf, err = parseLeaf(l.ChainPEM); err != nil {
		return nil, c.Errorf("", "fullchain", "%s: %w", l.Fullchain, err)
	}
	if l.Key, err = parseKey(keyPEM); err != nil {
		return nil, c.Errorf("", "privkey", "%s: %w", l.Privkey, err)
	}
	if !samePublic(l.Leaf.PublicKey, l.Key.Public()) {
		return nil, c.Errorf("", "privkey", "%s is not the key of the certificate in %s", l.Privkey, l.Fullchain)
	}
	return l, nil
}

// readLive reads the live/ file named by key, saying where a symlink
// points when its target is missing (certbot's archive/).
func (l *Lineage) readLive(key string) ([]byte, error) {
	p := l.Conf.Str("", key)
	b, err := os.ReadFile(p)
	if err == nil {
		return b, nil
	}
	if target, lerr := os.Readlink(p); lerr == nil && errors.Is(err, fs.ErrNotExist) {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		return nil, l.Conf.Errorf("", key, "%s points at %s, which is missing: %w", p, filepath.Clean(target), err)
	}
	return nil, l.Conf.Errorf("", key, "%w", err)
}

// parseLeaf returns the first certificate of a PEM chain.
func parseLeaf(chainPEM []byte) (*x509.Certificate, error) {
	for rest := chainPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no certificate in the file")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// parseKey parses a PEM private key as certbot writes it: PKCS#8, or
// the older "RSA PRIVATE KEY" and "EC PRIVATE KEY" forms.
func parseKey(keyPEM []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// samePublic reports whether two public keys are equal.
func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// Unlink replaces the symlink at path (a live/ file pointing into
// archive/) by a regular file with the same content, mode and owner as
// its target, atomically: readers see the old link or the new file,
// never nothing. The archive/ file is left as it is. A path that is not
// a symlink is left alone.
func Unlink(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	t, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	defer func() { _ = os.Remove(t.Name()) }() // gone after the rename
	err = copyInto(t, target, b)
	if cerr := t.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("unlink %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// copyInto gives t the mode and owner of target and the content b.
func copyInto(t *os.File, target fs.FileInfo, b []byte) error {
	if err := t.Chmod(target.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := target.Sys().(*syscall.Stat_t); ok {
		if err := t.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	if _, err := t.Write(b); err != nil {
		return err
	}
	return t.Sync()
}

// syncDir syncs directory dir, so that a rename in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
