package server

import (
	"crypto/tls"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync/atomic"
)

// fileCert is a certificate chain and key read from PEM files. The
// handshake path only loads the current pointer; check, run by the
// Server's watcher, re-reads the files when they change.
type fileCert struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	certID, keyID     fs.FileInfo // watcher-owned after loadFileCert
	failing           bool        // a warning was logged; quiet until it loads again
}

func loadFileCert(certFile, keyFile string) (*fileCert, error) {
	fc := &fileCert{certFile: certFile, keyFile: keyFile}
	if err := fc.load(); err != nil {
		return nil, err
	}
	return fc, nil
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
	return nil
}

// check reloads the pair if either file changed (other file, size or
// modification time). A pair that does not load, such as a certificate
// written before its new key, keeps the old one in service and is tried
// again on the next check.
func (fc *fileCert) check(log *slog.Logger) {
	cid, err1 := os.Stat(fc.certFile)
	kid, err2 := os.Stat(fc.keyFile)
	if err := firstErr(err1, err2); err != nil {
		fc.warn(log, "certificate files unavailable; serving the loaded certificate", err)
		return
	}
	if sameVersion(cid, fc.certID) && sameVersion(kid, fc.keyID) {
		return
	}
	if err := fc.load(); err != nil {
		fc.warn(log, "changed certificate files do not load; serving the loaded certificate", err)
		return
	}
	fc.failing = false
	log.Info("certificate reloaded from files", "cert_file", fc.certFile, "not_after", fc.current().Leaf.NotAfter)
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
