package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// fileCert is a certificate chain and key read from PEM files. The
// handshake path only loads the current pointer; check, run by the
// Server's watcher, re-reads the files when they change.
type fileCert struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	loaded            atomic.Bool // cur is from the files, not a temporary certificate
	certID, keyID     fs.FileInfo // watcher-owned after newFileCert; nil until the files first load
	failing           bool        // a warning was logged; quiet until it loads again
	names             []string    // of the temporary certificate, made again before it expires (check)
}

// newFileCert loads the pair. When either file does not exist yet, it
// serves instead the certificate prev (the same files' in the table
// being replaced) loaded, or else a temporary self-signed certificate
// for names, and waiting is true: the watcher puts the pair in service
// once both files exist and load. A pair whose files exist but do not
// load is an error.
func newFileCert(certFile, keyFile string, names []string, prev *fileCert) (fc *fileCert, waiting bool, err error) {
	fc = &fileCert{certFile: certFile, keyFile: keyFile, names: names}
	err = fc.load()
	if err == nil {
		return fc, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if prev != nil && prev.loaded.Load() {
		fc.cur.Store(prev.current())
		fc.loaded.Store(true)
		return fc, true, nil
	}
	tc, err := temporaryCert(names)
	if err != nil {
		return nil, false, err
	}
	fc.cur.Store(tc)
	return fc, true, nil
}

func (fc *fileCert) current() *tls.Certificate { return fc.cur.Load() }

// load reads both files and installs the pair. The identity of the files
// is taken before reading, so a change during the read is seen again on
// the next check.
func (fc *fileCert) load() error {
	cid, err := os.Stat(fc.certFile)
	if err != nil {
		return fmt.Errorf("cert_file: %w", err)
	}
	kid, err := os.Stat(fc.keyFile)
	if err != nil {
		return fmt.Errorf("key_file: %w", err)
	}
	c, err := tls.LoadX509KeyPair(fc.certFile, fc.keyFile)
	if err != nil {
		return fmt.Errorf("cert_file %s, key_file %s: %w", fc.certFile, fc.keyFile, err)
	}
	fc.certID, fc.keyID = cid, kid
	fc.cur.Store(&c)
	fc.loaded.Store(true)
	return nil
}

// check reloads the pair if either file changed (other file, size or
// modification time). A pair that does not load, such as a certificate
// written before its new key, keeps the old one (or the temporary one)
// in service and is tried again on the next check.
func (fc *fileCert) check(log *slog.Logger) {
	waiting, temporary := fc.certID == nil, !fc.loaded.Load()
	serving := "the loaded certificate"
	if temporary {
		serving = "the temporary certificate"
	}
	cid, err1 := os.Stat(fc.certFile)
	kid, err2 := os.Stat(fc.keyFile)
	if err := firstErr(err1, err2); err != nil {
		if !waiting || !errors.Is(err, fs.ErrNotExist) { // still missing: warned at start
			fc.warn(log, "certificate files unavailable; serving "+serving, err)
		}
		if temporary {
			fc.renewTemporary(log)
		}
		return
	}
	if !waiting && sameVersion(cid, fc.certID) && sameVersion(kid, fc.keyID) {
		return
	}
	if err := fc.load(); err != nil {
		fc.warn(log, "changed certificate files do not load; serving "+serving, err)
		if temporary {
			fc.renewTemporary(log)
		}
		return
	}
	fc.failing = false
	if temporary {
		log.Info("certificate files appeared; serving them in place of the temporary certificate", "cert_file", fc.certFile, "key_file", fc.keyFile, "not_after", fc.current().Leaf.NotAfter)
		return
	}
	log.Info("certificate reloaded from files", "cert_file", fc.certFile, "not_after", fc.current().Leaf.NotAfter)
}

// tempRenewBefore is how long before it expires the temporary
// certificate is made again, so that files missing for weeks never leave
// an expired stand-in in service.
const tempRenewBefore = 24 * time.Hour

// renewTemporary replaces the temporary certificate in service with a
// new one when it is about to expire.
func (fc *fileCert) renewTemporary(log *slog.Logger) {
	if c := fc.current(); c != nil && c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter.Add(-tempRenewBefore)) {
		return
	}
	tc, err := temporaryCert(fc.names)
	if err != nil {
		log.Warn("temporary certificate not made again", "cert_file", fc.certFile, "error", err)
		return
	}
	if !fc.loaded.Load() {
		fc.cur.Store(tc)
	}
}

func (fc *fileCert) warn(log *slog.Logger, msg string, err error) {
	if !fc.failing {
		log.Warn(msg, "cert_file", fc.certFile, "key_file", fc.keyFile, "error", err)
	}
	fc.failing = true
}

func sameVersion(a, b fs.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
