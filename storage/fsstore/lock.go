package fsstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tlspilot/tlspilot/storage"
)

const (
	// tokenBytes is the number of random bytes in a lease token; tokens
	// are written as 2*tokenBytes lower-case hex digits.
	tokenBytes = 16
	// maxLockFile bounds how much of a lock file is read.
	maxLockFile = 4096
	// minClaimAge is how old a takeover claim must be (and at least
	// LeaseTTL) before another process treats its maker as dead.
	minClaimAge = 10 * time.Second
)

// lockRecord is the content of a lock file.
type lockRecord struct {
	Owner   string    `json:"owner"`
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"` // RFC 3339 with nanoseconds
}

// lockState is what one version of a lock file says.
type lockState struct {
	// gen identifies the version: its token, or for an unparseable file a
	// digest of its content. It is safe to use in a file name.
	gen     string
	owner   string
	expired bool
}

// Lock waits until the lock called name is free, or held under an expired
// lease, takes it and returns its lease, which is renewed in the background
// until Unlock. It polls every PollInterval and returns an error wrapping
// ctx.Err() if ctx ends first. An unparseable lock file counts as expired
// once its modification time is LeaseTTL old (an empty one: see parseLock).
// On a storage that vanished, Lock fails with ErrGone.
//
// The lease's Unlock ignores its ctx (it only does quick local file
// operations) and removes the lock file only if it still holds this
// lease's token; on a lease that was lost it returns an error wrapping
// storage.ErrLockLost.
func (s *Store) Lock(ctx context.Context, name string) (storage.Lease, error) {
	if s.ro {
		return nil, ErrReadOnly
	}
	if err := check(ctx.Err(), name); err != nil {
		return nil, fmt.Errorf("fsstore: lock: %w", err)
	}
	path := s.lockPath(name)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("fsstore: lock %s: %w", name, err)
		}
		if err := s.checkData(); err != nil {
			return nil, fmt.Errorf("fsstore: lock %s: %w", name, err)
		}
		l, err := s.tryLock(name, path)
		if err != nil {
			return nil, fmt.Errorf("fsstore: lock %s: %w", name, s.goneOr(err))
		}
		if l != nil {
			return l, nil
		}
		t := time.NewTimer(s.poll + rand.N(s.poll/5+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("fsstore: lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// tryLock makes a few attempts to take the lock without waiting, breaking
// it if it expired. It returns a nil lease if the lock is held by someone.
// It reads the lock file before trying to create one, so polling a held
// lock writes nothing.
func (s *Store) tryLock(name, path string) (*lease, error) {
	for range 3 {
		st, err := s.inspect(path)
		switch {
		case err == nil && !st.expired:
			return nil, nil
		case err == nil:
			if again, err := s.breakExpired(path, st); err != nil || !again {
				return nil, err
			}
		case !notExist(err):
			return nil, err
		}
		token := randomHex(tokenBytes)
		expires := time.Now().Add(s.ttl)
		err = s.createLock(path, lockRecord{Owner: s.owner, Token: token, Expires: expires.UTC()})
		if err == nil {
			return s.startLease(name, path, token, expires), nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return nil, nil
}

// createLock creates the lock file at path holding rec, or fails with an
// error matching fs.ErrExist if it exists. The content is written to a
// temporary file first and published at path, so the lock file never
// exists half-written.
func (s *Store) createLock(path string, rec lockRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp, err := writeTemp(s.lockDir, data, grant{})
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return s.publish(tmp, path)
}

// publish gives path the content of the complete file src, unless path
// exists: then it fails with an error matching fs.ErrExist. The caller
// removes src afterwards (it may or may not still exist).
//
// With hard links, src is linked to path, which fails if path exists.
// Without them, path is first created empty with O_EXCL, which fails if
// it exists, and src is then renamed over it: other processes may see the
// empty file for that moment, never a half-written one. An empty lock file
// counts as held until it is max(LeaseTTL, minClaimAge) old (see
// parseLock), so nobody breaks it in between.
func (s *Store) publish(src, path string) error {
	if s.links {
		return os.Link(src, path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_ = f.Close()
	if err := os.Rename(src, path); err != nil {
		_ = os.Remove(path) // our own empty file: nobody else writes it
		return err
	}
	return nil
}

// inspect reads the lock file at path, which must be a regular file
// (openRegular: a FIFO put there blocked the open for ever).
func (s *Store) inspect(path string) (lockState, error) {
	f, fi, err := openRegular(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return lockState{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLockFile))
	if err != nil {
		return lockState{}, err
	}
	return s.parseLock(data, fi.ModTime(), time.Now()), nil
}

// parseLock interprets the content of a lock file last modified at mtime.
// An unparseable file expires LeaseTTL after mtime; an empty one, which
// may be a lock being published (see publish), only after
// max(LeaseTTL, minClaimAge), which also covers file systems (FAT, exFAT)
// that keep modification times only to the second or two.
func (s *Store) parseLock(data []byte, mtime, now time.Time) lockState {
	var rec lockRecord
	if json.Unmarshal(data, &rec) == nil && validToken(rec.Token) && !rec.Expires.IsZero() {
		return lockState{gen: rec.Token, owner: rec.Owner, expired: now.After(rec.Expires) || s.ownerDead(rec.Owner)}
	}
	ttl := s.ttl
	if len(data) == 0 {
		ttl = max(ttl, minClaimAge)
	}
	sum := sha256.Sum256(data)
	return lockState{gen: "g" + hex.EncodeToString(sum[:15]), expired: now.Sub(mtime) > ttl}
}

// validToken reports whether tok looks like a token made by tryLock.
func validToken(tok string) bool {
	if len(tok) != 2*tokenBytes {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// breakExpired removes the expired lock file at path, whose content st
// describes, and reports whether the caller should try to create the lock
// again at once.
//
// Several processes may find the same expired lock at the same moment.
// Each first creates a claim file named after the expired version with
// O_EXCL, so only one of them breaks that version; the winner checks that
// the lock file still holds that version and that it is still expired, and
// removes it with removeIfGen, which puts back a lock taken in between.
//
// What remains is what every lease without fencing tokens has: a holder
// frozen past its expiry (after checking its lease, before renewing it or
// before an Unlock) may overwrite or remove its successor's lock file, and a
// breaker frozen for longer than max(LeaseTTL, minClaimAge) while holding a
// claim may have its claim broken too. Such a loser notices at its next
// renewal (Done is closed, Err wraps storage.ErrLockLost).
func (s *Store) breakExpired(path string, st lockState) (bool, error) {
	claim := filepath.Join(s.lockDir, ".~"+filepath.Base(path)+"."+st.gen+".claim")
	f, err := os.OpenFile(claim, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		s.dropStaleClaim(claim)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_ = f.Close()
	defer os.Remove(claim)
	cur, err := s.inspect(path)
	switch {
	case notExist(err):
		return true, nil
	case err != nil:
		return false, err
	case cur.gen != st.gen:
		return true, nil // replaced meanwhile: look again
	case !cur.expired:
		return false, nil
	}
	removed, err := s.removeIfGen(path, st.gen, true)
	if removed {
		s.log.Warn("fsstore: broke expired lock", "lock", path, "owner", st.owner)
	}
	return err == nil, err
}

// dropStaleClaim removes a takeover claim left by a process that died
// while breaking a lock.
func (s *Store) dropStaleClaim(claim string) {
	fi, err := os.Stat(claim)
	if err == nil && time.Since(fi.ModTime()) > max(s.ttl, minClaimAge) {
		s.log.Warn("fsstore: removing abandoned lock claim", "file", claim)
		_ = os.Remove(claim)
	}
}

// removeIfGen removes the lock file at path if it holds version gen (and,
// with expiredOnly, if that version has expired), and reports whether it
// did. Files have no atomic compare-and-delete, so it renames the file to a
// name of its own, checks what it moved and publishes it back if that was
// not the version meant (say, it was renewed a moment ago); the lock file
// is missing only for that moment.
func (s *Store) removeIfGen(path, gen string, expiredOnly bool) (bool, error) {
	meant := func(st lockState) bool { return st.gen == gen && (st.expired || !expiredOnly) }
	if st, err := s.inspect(path); err != nil || !meant(st) {
		if notExist(err) {
			err = nil
		}
		return false, err
	}
	aside := filepath.Join(s.lockDir, ".~"+filepath.Base(path)+"."+randomHex(8)+".old")
	if err := os.Rename(path, aside); err != nil {
		if notExist(err) {
			err = nil
		}
		return false, err
	}
	defer os.Remove(aside)
	st, err := s.inspect(aside)
	if err == nil && meant(st) {
		return true, nil
	}
	// We moved a lock taken after our check: put it back. If someone took
	// the lock in this moment, they hold it now, and the moved lock's
	// holder loses its lease at its next renewal.
	lerr := s.publish(aside, path)
	if lerr != nil {
		s.log.Error("fsstore: could not put back a lock file moved by mistake", "lock", path, "err", lerr)
	}
	if lerr != nil && !errors.Is(lerr, fs.ErrExist) {
		err = errors.Join(err, fmt.Errorf("put back lock file: %w", lerr))
	}
	return false, err
}

// ownerDead reports whether owner names a process on this host (in the
// default "hostname:pid:random" form) that no longer exists, so its lock
// can be taken over at once instead of when its lease runs out: a restart
// after a crash does not wait for the lease. Owners on other hosts, or in
// another form, are never judged dead this way.
func (s *Store) ownerDead(owner string) bool {
	host, rest, ok := strings.Cut(owner, ":")
	if !ok || host != s.host || s.host == "" {
		return false
	}
	pidText, _, ok := strings.Cut(rest, ":")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
