package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/storage"
)

// migration is one run of "storage migrate".
type migration struct {
	opts     migrateOptions
	out      io.Writer
	log      *slog.Logger
	from, to *endpoint
	kek      kekGuard
	copied   map[string][]byte // key → the value copied (or found equal)
	certs    []string          // ids of the certificates copied
	kept     []string          // lines about groups kept as the destination has them
	keys     int               // keys copied
	done     map[string]int    // kind → groups copied or replaced
	same     int               // keys already equal in the destination
	// changesKept: the destination's change record was kept, so the
	// certificates copied are noted in it.
	changesKept bool
}

// group is a set of keys copied together, under the same locks: the
// records of one certificate (certs/ID/...), of one ACME account
// (accounts/CAID/HASH/...), or a single key.
type group struct {
	name string // "certs/ID", "accounts/CAID/HASH", or the key
	kind string // "certificate", "account" or "record"
	id   string // the certificate's or account's id
}

// Actions decided for a group.
const (
	actCopy    = "copy"    // the destination has none of its keys
	actReplace = "replace" // the destination has some, not all equal
	actSame    = "same"    // the destination has them all, equal
	actKeep    = "keep"    // the destination's are kept
)

// run opens both storages, plans, copies, verifies and reports.
func (m *migration) run(ctx context.Context) (err error) {
	if m.from, err = openEndpoint(ctx, m.side(endpointOptions{loc: m.opts.from, source: true})); err != nil {
		return fmt.Errorf("source %w", err)
	}
	defer m.from.close()
	if m.kek, err = loadKEKGuard(m.opts.kek, m.from.dir); err != nil {
		return err
	}
	src, err := m.from.list(ctx)
	if err != nil {
		return fmt.Errorf("source %w", err)
	}
	if len(src) == 0 {
		return fmt.Errorf("source %s holds no records: nothing to migrate (is it the storage serve uses?)", m.from.name)
	}
	if err := m.preflight(ctx, src); err != nil {
		return err
	}
	// Opened last, so that a run refused above creates no directory.
	if m.to, err = openEndpoint(ctx, m.side(endpointOptions{loc: m.opts.to})); err != nil {
		return fmt.Errorf("destination %w", err)
	}
	defer m.to.close()
	if err := m.sameStorage(ctx); err != nil {
		return err
	}
	if err := m.sameKEK(ctx); err != nil {
		return err
	}
	groups, err := m.plan(ctx, src)
	if err != nil {
		return err
	}
	m.copied, m.done = map[string][]byte{}, map[string]int{}
	for _, g := range groups {
		if err := m.group(ctx, g); err != nil {
			return err
		}
	}
	if m.opts.dryRun {
		m.report()
		return nil
	}
	if err := m.noteChanges(ctx); err != nil {
		return err
	}
	if err := m.verify(ctx); err != nil {
		return err
	}
	m.report()
	return nil
}

// sameKEK refuses, even with --force, a destination whose keys are
// sealed under another key-encryption key than the source's: no process
// could open both, and the destination's nodes would order again every
// certificate copied. It compares the storages' kek-id records, and with
// the source's KEK at hand (--kek, or the source directory's kek) opens a
// destination that has none.
func (m *migration) sameKEK(ctx context.Context) error {
	src, err := m.from.load(ctx, certstore.KEKIDKey)
	if err != nil {
		return fmt.Errorf("source %w", err)
	}
	dst, err := m.to.load(ctx, certstore.KEKIDKey)
	if err != nil {
		return fmt.Errorf("destination %w", err)
	}
	srcID, dstID := strings.TrimSpace(string(src)), strings.TrimSpace(string(dst))
	if srcID == "" && m.kek.sealer != nil {
		srcID = m.kek.sealer.ID()
	}
	refuse := fmt.Errorf("destination %s: its keys are sealed under another key-encryption key than the source's "+
		"(kek-id %s, the source's %s): no process could open both; migrate into an empty storage or one of the same key", m.to.name, dstID, srcID)
	switch {
	case srcID != "" && dstID != "" && srcID != dstID:
		return refuse
	case dstID == "" && m.kek.sealer != nil && m.to.s != nil:
		if _, err := certstore.New(m.to.s, m.kek.sealer).KEKMatches(ctx); errors.Is(err, certstore.ErrWrongKEK) {
			return refuse
		} else if err != nil {
			return fmt.Errorf("destination %s: %w", m.to.name, err)
		}
	}
	return nil
}

// side completes o with what both sides share: the dry run, the lock
// wait and the logger.
func (m *migration) side(o endpointOptions) endpointOptions {
	o.readOnly, o.lockWait, o.logger = m.opts.dryRun, m.opts.lockWait, m.log
	return o
}

// preflight reads every source value once before anything is written,
// so that a value which must not be copied (the KEK, a key in clear)
// refuses the run before it creates or changes the destination. The copy
// checks each value again as it reads it under the locks.
func (m *migration) preflight(ctx context.Context, src []string) error {
	for _, k := range src {
		v, err := m.from.load(ctx, k)
		if err != nil {
			return fmt.Errorf("source %w", err)
		}
		if err := m.kek.check(m.from.name, k, v); err != nil {
			return err
		}
	}
	return nil
}

// plan puts the source's keys src in groups, and refuses, without
// --force, a destination that holds keys.
func (m *migration) plan(ctx context.Context, src []string) ([]group, error) {
	dst, err := m.to.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination %w", err)
	}
	if len(dst) > 0 && !m.opts.force {
		return nil, fmt.Errorf("destination %s already holds %d records (%s, ...): refusing to copy into it; "+
			"name an empty storage, or add --force to merge (a newer certificate there is kept)", m.to.name, len(dst), dst[0])
	}
	var groups []group
	seen := map[string]bool{}
	for _, k := range src {
		if g := groupOf(k); !seen[g.name] {
			seen[g.name] = true
			groups = append(groups, g)
		}
	}
	// The change record last: it lists certificates copied before it.
	slices.SortStableFunc(groups, func(a, b group) int {
		return boolInt(a.name == changesRecord) - boolInt(b.name == changesRecord)
	})
	return groups, nil
}

// changesRecord is the key of the change record (certstore.Changes).
const changesRecord = "changes.json"

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// groupOf returns the group of key.
func groupOf(key string) group {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) == 3 && parts[0] == "certs" {
		return group{name: "certs/" + parts[1], kind: "certificate", id: parts[1]}
	}
	// An account's id is "CAID/HASH" (certstore.AccountID).
	if a := strings.SplitN(key, "/", 4); len(a) == 4 && a[0] == "accounts" {
		id := a[1] + "/" + a[2]
		return group{name: "accounts/" + id, kind: "account", id: id}
	}
	return group{name: key, kind: "record"}
}

// locks returns the lock names that guard writes of g's records.
func (g group) locks() []string {
	switch g.kind {
	case "certificate":
		return []string{certstore.IssueLock(g.id), certstore.DeployLock(g.id)}
	case "account":
		return []string{certstore.AccountLock(g.id)}
	}
	return nil
}

// group copies g (or, in a dry run, prints what would be done), under
// its locks in both storages.
func (m *migration) group(ctx context.Context, g group) error {
	if !m.opts.dryRun {
		unlock, wctx, err := m.lockGroup(ctx, g)
		if err != nil {
			return err
		}
		defer unlock()
		ctx = wctx
	}
	src, keys, err := m.sourceValues(ctx, g)
	if err != nil {
		return err
	}
	act, why, err := m.decide(ctx, g, src, keys)
	if err != nil {
		return err
	}
	if act == actKeep {
		m.kept = append(m.kept, fmt.Sprintf("kept %s %s as the destination has it: %s", g.kind, g.name, why))
		m.changesKept = m.changesKept || g.name == changesRecord
		return nil
	}
	if act != actSame {
		m.done[g.kind]++
	}
	for _, k := range keys {
		if err := m.copyKey(ctx, k, src[k], act); err != nil {
			return err
		}
	}
	if g.kind == "certificate" && act != actSame {
		m.certs = append(m.certs, g.id)
	}
	return nil
}

// lockGroup takes g's locks in the source, then in the destination. The
// returned ctx carries the destination's first lease, so a database
// rejects the writes if it was lost (storage.WithLease).
func (m *migration) lockGroup(ctx context.Context, g group) (unlock func(), wctx context.Context, err error) {
	var held []storage.Lease
	unlock = func() {
		for i := len(held) - 1; i >= 0; i-- {
			_ = held[i].Unlock(context.WithoutCancel(ctx))
		}
	}
	var first storage.Lease
	for _, e := range []*endpoint{m.from, m.to} {
		for _, name := range g.locks() {
			l, err := e.lock(ctx, name)
			if err != nil {
				unlock()
				if e == m.to {
					return nil, nil, fmt.Errorf("destination %w", err)
				}
				return nil, nil, fmt.Errorf("source %w", err)
			}
			held = append(held, l)
			if e == m.to && first == nil {
				first = l
			}
		}
	}
	return unlock, storage.WithLease(ctx, first), nil
}

// sourceValues reads g's keys and values from the source, as they are
// now (under the locks, outside a dry run). The KEK and keys in clear are
// refused here.
func (m *migration) sourceValues(ctx context.Context, g group) (map[string][]byte, []string, error) {
	keys := []string{g.name}
	if g.kind != "record" {
		var err error
		if keys, err = m.from.s.List(ctx, g.name); err != nil {
			return nil, nil, fmt.Errorf("source %s: list %s: %w", m.from.name, g.name, err)
		}
	}
	vals := map[string][]byte{}
	var present []string
	for _, k := range keys {
		v, err := m.from.load(ctx, k)
		if err != nil {
			return nil, nil, fmt.Errorf("source %w", err)
		}
		if v == nil {
			continue // removed since it was listed
		}
		if err := m.kek.check(m.from.name, k, v); err != nil {
			return nil, nil, err
		}
		vals[k] = v
		present = append(present, k)
	}
	return vals, present, nil
}

// decide says what to do with g, whose source values are src, from what
// the destination holds.
func (m *migration) decide(ctx context.Context, g group, src map[string][]byte, keys []string) (act, why string, err error) {
	dst := map[string][]byte{}
	equal := 0
	for _, k := range keys {
		v, err := m.to.load(ctx, k)
		if err != nil {
			return "", "", fmt.Errorf("destination %w", err)
		}
		if v != nil {
			dst[k] = v
		}
		if bytes.Equal(v, src[k]) {
			equal++
		}
	}
	switch {
	case len(dst) == 0:
		return actCopy, "", nil
	case equal == len(keys):
		return actSame, "", nil
	case g.kind == "certificate":
		if newer, why := destNewer(src[g.name+"/cert.json"], dst[g.name+"/cert.json"]); newer {
			return actKeep, why, nil
		}
	case g.kind == "account" && dst[g.name+"/key"] != nil && !bytes.Equal(dst[g.name+"/key"], src[g.name+"/key"]):
		// An equal key is the same account, copied in part by a run
		// that stopped: the rest is copied.
		return actKeep, "its account key differs from the source's, and an account key is never replaced", nil
	case g.name == changesRecord:
		return actKeep, "it is the destination's record of changes; each certificate copied is noted in it", nil
	}
	return actReplace, "", nil
}

// destNewer says whether the destination's certificate record is newer
// than the source's: a later not_after (or, equal, a later obtained).
// A destination with a certificate and a source without one, or with one
// that does not decode, is newer.
func destNewer(src, dst []byte) (bool, string) {
	if dst == nil {
		return false, ""
	}
	var s, d struct {
		NotAfter time.Time `json:"not_after"`
		Obtained time.Time `json:"obtained"`
	}
	if json.Unmarshal(dst, &d) != nil {
		return false, ""
	}
	if src != nil && json.Unmarshal(src, &s) != nil {
		return true, "the source's certificate record does not decode"
	}
	if d.NotAfter.After(s.NotAfter) || d.NotAfter.Equal(s.NotAfter) && d.Obtained.After(s.Obtained) {
		return true, fmt.Sprintf("its certificate is newer (not after %s, the source's %s)",
			d.NotAfter.UTC().Format(time.RFC3339), s.NotAfter.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// copyKey stores v under key in the destination (in a dry run, prints
// what would be done) and remembers it for verify.
func (m *migration) copyKey(ctx context.Context, key string, v []byte, act string) error {
	m.copied[key] = v
	if act == actSame {
		m.same++
	} else {
		m.keys++
	}
	if m.opts.dryRun {
		verb := map[string]string{actCopy: "would copy", actReplace: "would replace", actSame: "already equal"}[act]
		fmt.Fprintf(m.out, "%-14s %s (%d bytes)\n", verb, key, len(v))
		return nil
	}
	if act == actSame {
		return nil
	}
	if err := m.to.s.Store(ctx, key, v); err != nil {
		return fmt.Errorf("destination %s: store %s: %w", m.to.name, key, err)
	}
	return nil
}

// noteChanges tells the destination's change record of each certificate
// copied, when the destination kept its own record: processes running on
// it then load them.
func (m *migration) noteChanges(ctx context.Context) error {
	if !m.changesKept {
		return nil
	}
	st := certstore.New(m.to.s, nil)
	for _, id := range m.certs {
		if err := st.NoteChange(ctx, id); err != nil {
			return fmt.Errorf("destination %s: note certificate %s in %s: %w", m.to.name, id, changesRecord, err)
		}
	}
	return nil
}

// verify reads every copied key back from both storages and compares it
// with what was copied.
func (m *migration) verify(ctx context.Context) error {
	for _, k := range slices.Sorted(maps.Keys(m.copied)) {
		d, err := m.to.load(ctx, k)
		if err != nil {
			return fmt.Errorf("verify: destination %w", err)
		}
		if !bytes.Equal(d, m.copied[k]) {
			return fmt.Errorf("verify: destination %s: %s differs from what was copied (%d bytes read back, %d copied): "+
				"is a process writing to it?", m.to.name, k, len(d), len(m.copied[k]))
		}
		s, err := m.from.load(ctx, k)
		if err != nil {
			return fmt.Errorf("verify: source %w", err)
		}
		if !bytes.Equal(s, m.copied[k]) {
			return fmt.Errorf("verify: source %s: %s changed during the copy: stop serve, certs and renew on it and run again with --force",
				m.from.name, k)
		}
	}
	return nil
}
