// Package deploy puts a certificate where other software reads it: PEM
// files written atomically with their owner, group and mode, then a
// reload command or a signal. It is the deploy step of `tlspilot certs`
// (and of the fleet agent); the certificate and its key come from the
// storage, which stays the source of truth: deployed files are never
// read back as such, only compared to decide whether to write.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// DefaultKeyMode is the mode of the private key and combined files when
// Options.Mode is zero; the other files are always PublicMode.
const (
	DefaultKeyMode fs.FileMode = 0o600
	PublicMode     fs.FileMode = 0o644
)

// DefaultReloadTimeout bounds a reload command when Options.ReloadTimeout
// is zero.
const DefaultReloadTimeout = 60 * time.Second

// Options says where one certificate's files go and how the software
// that reads them is told. Every path is absolute; at least one file is
// named.
type Options struct {
	// Fullchain receives the leaf and the chain; Privkey the private key
	// (PKCS #8); Cert the leaf only; Chain the chain only; Combined the
	// key, the leaf and the chain in one file (HAProxy, Postfix). Their
	// folders must exist and be reached through no symbolic link of
	// another user than root and the running one; whatever sits at a
	// path that is not a regular file of its own (a symbolic link, a hard
	// link, a FIFO) is replaced, never written or changed through.
	Fullchain, Privkey, Cert, Chain, Combined string
	// Owner and Group own the files (names or numeric ids); empty keeps
	// the running user's and the directory's defaults.
	Owner, Group string
	// Mode is the mode of Privkey and Combined; 0 means DefaultKeyMode.
	// It may not grant anything to others. The other files are
	// PublicMode.
	Mode fs.FileMode
	// Reload is a command (argv, run without a shell) that makes the
	// software read the files again. Alternatively Signal is sent to the
	// process whose id is on the first line of PIDFile (a regular file,
	// not a symbolic link; one that belongs to another user than root
	// and the running one may only name a process of that user).
	// Neither: nothing is reloaded.
	Reload  []string
	Signal  syscall.Signal
	PIDFile string
	// ReloadTimeout bounds Reload; 0 means DefaultReloadTimeout.
	ReloadTimeout time.Duration
	// HideEnv names environment variables Reload does not inherit:
	// secrets tlspilot reads from its environment (tsig_secret_env),
	// which the reloaded software has no use for.
	HideEnv []string
	// Logger receives what is written and run; nil discards.
	Logger *slog.Logger
}

// Files deploys one certificate. Its methods are safe for concurrent
// use, but calls for the same files should not overlap (the last rename
// wins).
type Files struct {
	opts     Options
	uid, gid int // -1: unchanged
	log      *slog.Logger
}

// New checks opts and resolves the owner and group.
func New(opts Options) (*Files, error) {
	if opts.Fullchain == "" && opts.Privkey == "" && opts.Cert == "" && opts.Chain == "" && opts.Combined == "" {
		return nil, errors.New("deploy: no file to write")
	}
	if opts.Mode == 0 {
		opts.Mode = DefaultKeyMode
	}
	if opts.Mode&^fs.ModePerm != 0 || opts.Mode&0o007 != 0 {
		return nil, fmt.Errorf("deploy: mode %04o: a private key must not be readable or writable by others", opts.Mode)
	}
	if len(opts.Reload) > 0 && opts.PIDFile != "" {
		return nil, errors.New("deploy: reload command and pidfile signal are exclusive")
	}
	if (opts.PIDFile == "") != (opts.Signal == 0) {
		return nil, errors.New("deploy: signal and pidfile go together")
	}
	if opts.ReloadTimeout <= 0 {
		opts.ReloadTimeout = DefaultReloadTimeout
	}
	f := &Files{opts: opts, uid: -1, gid: -1, log: opts.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if opts.Owner != "" {
		if f.uid, err = lookupID(opts.Owner, user.Lookup, func(u *user.User) string { return u.Uid }); err != nil {
			return nil, fmt.Errorf("deploy: owner %q: %w", opts.Owner, err)
		}
	}
	if opts.Group != "" {
		if f.gid, err = lookupID(opts.Group, user.LookupGroup, func(g *user.Group) string { return g.Gid }); err != nil {
			return nil, fmt.Errorf("deploy: group %q: %w", opts.Group, err)
		}
	}
	return f, nil
}

// maxID is the largest user or group id: (uid_t)-1, one more, means
// "unchanged" to chown, and larger ids would be cut to 32 bits (4294967296
// to 0, root).
const maxID = 1<<32 - 2

// lookupID returns a numeric id as is, or looks a name up.
func lookupID[T any](v string, lookup func(string) (T, error), id func(T) string) (int, error) {
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > maxID {
			return -1, fmt.Errorf("id %d out of range (at most %d)", n, maxID)
		}
		return int(n), nil
	}
	x, err := lookup(v)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(id(x))
}

// Write puts the files of the certificate whose PEM chain (leaf first)
// and PEM private key are given in place. Only files whose content
// differs are written; each is written to a temporary file in its own
// directory (with its final owner, group and mode, and synced) and all
// are renamed into place only once every one was written, so a failure
// leaves every previous file as it was. changed reports whether any file
// was replaced. An existing file with the right content but another mode
// or owner is corrected in place (never made more open than asked).
func (f *Files) Write(ctx context.Context, chainPEM, keyPEM []byte) (changed bool, err error) {
	want, err := f.contents(chainPEM, keyPEM)
	if err != nil {
		return false, err
	}
	var staged []*staged
	defer func() {
		for _, s := range staged {
			s.discard()
		}
	}()
	for _, w := range want {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		s, err := f.stage(w)
		if err != nil {
			return false, err
		}
		if s != nil {
			staged = append(staged, s)
		}
	}
	if err := commit(staged); err != nil {
		return false, err
	}
	for _, s := range staged {
		f.log.Info("deployed file", "path", s.path, "mode", fmt.Sprintf("%04o", s.mode))
		_ = s.dir.Close()
	}
	changed = len(staged) > 0
	staged = nil
	return changed, nil
}

// InPlace reports whether every file already holds what Write would put
// there, with its mode and owner, so that Write would change nothing. It
// only reads (a lock-free check before taking the deploy lock); an error
// means the content to compare could not be made.
func (f *Files) InPlace(ctx context.Context, chainPEM, keyPEM []byte) (bool, error) {
	want, err := f.contents(chainPEM, keyPEM)
	if err != nil {
		return false, err
	}
	for _, w := range want {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if !f.holds(w) {
			return false, nil
		}
	}
	return true, nil
}

// file is one file to deploy: its path, content and mode.
type file struct {
	path string
	data []byte
	mode fs.FileMode
}

// contents lists the configured files with what they hold.
func (f *Files) contents(chainPEM, keyPEM []byte) ([]file, error) {
	leaf, chain, err := splitChain(chainPEM)
	if err != nil {
		return nil, err
	}
	if len(keyPEM) == 0 {
		return nil, errors.New("deploy: no private key")
	}
	o := f.opts
	var out []file
	add := func(path string, data []byte, mode fs.FileMode) {
		if path != "" {
			out = append(out, file{path, data, mode})
		}
	}
	add(o.Fullchain, append(append([]byte{}, leaf...), chain...), PublicMode)
	add(o.Privkey, keyPEM, o.Mode)
	add(o.Cert, leaf, PublicMode)
	if len(chain) > 0 {
		add(o.Chain, chain, PublicMode)
	} else if o.Chain != "" {
		return nil, fmt.Errorf("deploy %s: the CA sent no intermediate certificate", o.Chain)
	}
	add(o.Combined, append(append(append([]byte{}, keyPEM...), leaf...), chain...), o.Mode)
	return out, nil
}
