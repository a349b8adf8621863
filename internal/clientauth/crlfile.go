package clientauth

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// crlFiles holds the CRLs of Policy.CRLFiles. A handshake reads the
// current snapshot without I/O; a background loop (watch) looks at the
// files' modification times and sizes once per interval, handshakes or
// not, and a file that changed is read again, so a new CRL applies from
// the first handshake after the next look. A file that no longer reads or
// parses keeps its previous CRLs (logged), which then go stale at their
// nextUpdate like any other.
type crlFiles struct {
	paths    []string
	cas      []*x509.Certificate // Policy.CAs, to check the CRLs' signatures when read
	interval time.Duration
	log      *slog.Logger

	snap atomic.Pointer[fileSnapshot]

	// warned holds the CRLs of the current snapshot said to be
	// unusable, so each is said once; the watch loop's. Only the current
	// ones: a CRL replaced is dropped, or a stale CRL re-published every
	// few seconds would keep every copy for ever.
	warned map[*crl]bool
}

// fileSnapshot is what the files held when last read.
type fileSnapshot struct {
	files    []fileState       // in the order of paths
	byIssuer map[string][]*crl // raw issuer name → CRLs
}

// fileState is one file as last read.
type fileState struct {
	mod  time.Time
	size int64
	crls []*crl
}

// newCRLFiles reads every file once; any error is returned, so a broken
// file is reported when the site starts. cas are the site's CAs, against
// which the CRLs' signatures are checked when read (warnUnusable).
func newCRLFiles(paths []string, cas []*x509.Certificate, interval time.Duration, log *slog.Logger) (*crlFiles, error) {
	f := &crlFiles{paths: paths, cas: cas, interval: interval, log: log}
	files := make([]fileState, len(paths))
	for i, p := range paths {
		st, err := readCRLFile(p)
		if err != nil {
			return nil, err
		}
		files[i] = st
	}
	f.snap.Store(newSnapshot(files))
	f.warned = make(map[*crl]bool)
	f.warnUnusable(time.Now())
	return f, nil
}

// warnUnusable logs, once per CRL read, a CRL of the files that cannot
// answer at now: its signature does not verify against the certificate
// of its issuer in the site's CAs (when the issuer is there), or it is
// stale, or from the future. Every client of its issuer is then refused
// (or let in with revocation_unknown = "allow") until the file is
// replaced, which a reader of the log should not have to infer from
// refusals. It keeps in f.warned the current CRLs only.
func (f *crlFiles) warnUnusable(now time.Time) {
	warned := make(map[*crl]bool, len(f.warned))
	for _, st := range f.snap.Load().files {
		for _, l := range st.crls {
			if f.warned[l] {
				warned[l] = true
				continue
			}
			if err := crlUnusable(l, f.cas, now); err != nil {
				warned[l] = true
				f.log.Warn("crl file cannot answer: clients of its issuer get no revocation answer from it until it is replaced",
					"file", l.source, "issuer", l.list.Issuer.String(), "error", err)
			}
		}
	}
	f.warned = warned
}

// crlUnusable returns why l cannot answer at now, or nil: a signature
// that verifies against none of cas named as its issuer (not known if
// none is: an intermediate's CRL is checked at the handshake, against the
// intermediate the client sends), else fresh's error.
func crlUnusable(l *crl, cas []*x509.Certificate, now time.Time) error {
	var sigErr error
	for _, ca := range cas {
		if !bytes.Equal(ca.RawSubject, l.rawIssuer) {
			continue
		}
		if sigErr = l.verify(ca); sigErr == nil {
			break
		}
	}
	if sigErr != nil {
		return sigErr
	}
	return l.fresh(now)
}

// CheckCRLFile reads the CRL file at path as Policy.CRLFiles are read,
// for a configuration check: err, naming the file, if it cannot be read
// or parsed (New would fail); else unusable has an error for each CRL of
// it that cannot answer at now (badly signed for its issuer among cas,
// stale, or from the future), which a Checker warns about when it reads
// the file.
func CheckCRLFile(path string, cas []*x509.Certificate, now time.Time) (unusable []error, err error) {
	st, err := readCRLFile(path)
	if err != nil {
		return nil, err
	}
	for _, l := range st.crls {
		if err := crlUnusable(l, cas, now); err != nil {
			unusable = append(unusable, err)
		}
	}
	return unusable, nil
}

// watch looks at the files once per interval until ctx ends.
func (f *crlFiles) watch(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.reload()
			f.warnUnusable(time.Now())
		}
	}
}

// readCRLFile stats and parses one file.
func readCRLFile(path string) (fileState, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileState{}, fmt.Errorf("crl file: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fileState{}, fmt.Errorf("crl file: %w", err)
	}
	crls, err := parseCRLs(data, path)
	if err != nil {
		return fileState{}, fmt.Errorf("crl file: %w", err)
	}
	return fileState{mod: fi.ModTime(), size: fi.Size(), crls: crls}, nil
}

// newSnapshot indexes files by issuer.
func newSnapshot(files []fileState) *fileSnapshot {
	s := &fileSnapshot{files: files, byIssuer: make(map[string][]*crl)}
	for _, f := range files {
		for _, l := range f.crls {
			s.byIssuer[string(l.rawIssuer)] = append(s.byIssuer[string(l.rawIssuer)], l)
		}
	}
	return s
}

// lookup returns what the newest fresh CRL among the files that covers
// cert and verifies against issuer says of it. ok is false when none
// does; err then says why the covering ones were not used, if any
// covered it.
func (f *crlFiles) lookup(cert, issuer *x509.Certificate, now time.Time) (a answer, ok bool, err error) {
	var usable []*crl
	var errs []error
	for _, l := range f.snap.Load().byIssuer[string(cert.RawIssuer)] {
		if !l.covers(cert, issuer) {
			continue
		}
		if err := l.verify(issuer); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := l.fresh(now); err != nil {
			errs = append(errs, err)
			continue
		}
		usable = append(usable, l)
	}
	if l := newest(usable); l != nil {
		return l.answer(cert), true, nil
	}
	return answer{}, false, errors.Join(errs...)
}

// reload reads again the files whose modification time or size changed
// and swaps in a new snapshot if any did.
func (f *crlFiles) reload() {
	old := f.snap.Load()
	files := make([]fileState, len(old.files))
	changed := false
	for i, p := range f.paths {
		files[i] = old.files[i]
		fi, err := os.Stat(p)
		if err != nil {
			if !old.files[i].mod.IsZero() {
				f.log.Error("crl file unreadable, keeping its previous CRLs", "file", p, "error", err)
				files[i].mod = time.Time{} // log once until it comes back
			}
			continue
		}
		if fi.ModTime().Equal(old.files[i].mod) && fi.Size() == old.files[i].size {
			continue
		}
		st, err := readCRLFile(p)
		if err != nil {
			f.log.Error("crl file changed but does not parse, keeping its previous CRLs", "file", p, "error", err)
			files[i].mod, files[i].size = fi.ModTime(), fi.Size() // log once per change
			continue
		}
		f.log.Info("crl file read again", "file", p, "crls", len(st.crls))
		files[i], changed = st, true
	}
	if changed || !sameStates(files, old.files) {
		f.snap.Store(newSnapshot(files))
	}
}

// sameStates reports whether a and b record the same times and sizes.
func sameStates(a, b []fileState) bool {
	for i := range a {
		if !a[i].mod.Equal(b[i].mod) || a[i].size != b[i].size {
			return false
		}
	}
	return true
}
