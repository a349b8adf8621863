package solvers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
)

// AnswerFileMode is the mode of http-01 answer files: another web server,
// running as another user, must be able to read them.
const AnswerFileMode fs.FileMode = 0o644

// HTTP01Files presents http-01 answers through an inner solver (the
// storage, for the handler) and, for owners that have a challenge
// directory, also as files <dir>/<token> holding the key authorization,
// for another web server that serves the directory at HTTP01Prefix. A
// file is written before Present returns (temporary name, then rename, so
// the web server never serves half an answer) and removed when the last
// owner that presented it cleans up. Tokens outside the ACME alphabet are
// refused: a token never becomes any other path.
type HTTP01Files struct {
	inner Solver
	dirOf func(owner string) string // "" for owners without a directory

	mu   sync.Mutex
	held map[string]owners // file path -> owners that presented it
	// wrote is the files each owner's Present wrote, by owner and token:
	// CleanUp removes those even if the owner's directory changed since
	// (its certificate managed again with another, or none), and keeps
	// those it failed to remove for the next CleanUp.
	wrote map[string][]string
}

// NewHTTP01Files returns a solver presenting through inner, and as files
// in dirOf(owner) for owners with a directory. dirOf must be safe for
// concurrent use.
func NewHTTP01Files(inner Solver, dirOf func(owner string) string) *HTTP01Files {
	return &HTTP01Files{inner: inner, dirOf: dirOf, held: make(map[string]owners), wrote: make(map[string][]string)}
}

// Present presents ch through the inner solver, then writes its file.
func (h *HTTP01Files) Present(ctx context.Context, ch acmeclient.Challenge) error {
	if err := h.inner.Present(ctx, ch); err != nil {
		return err
	}
	path, ok, err := h.path(ctx, ch)
	if !ok || err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := writeAnswer(path, ch.KeyAuthorization); err != nil {
		return fmt.Errorf("http-01 for %s: %w", ch.Identifier.Value, err)
	}
	if h.held[path] == nil {
		h.held[path] = make(owners)
	}
	h.held[path].add(ownerOf(ctx))
	if key := answerKey(ctx, ch); !slices.Contains(h.wrote[key], path) {
		h.wrote[key] = append(h.wrote[key], path)
	}
	return nil
}

// CleanUp drops the claim of the owner of ctx, removes the file when no
// owner holds it any more, and cleans up through the inner solver. The
// file is the one Present wrote, wherever the owner's directory is now;
// one this process did not write (left behind by another) is looked for
// in the owner's directory.
func (h *HTTP01Files) CleanUp(ctx context.Context, ch acmeclient.Challenge) error {
	return errors.Join(h.removeFiles(ctx, ch), h.inner.CleanUp(ctx, ch))
}

// removeFiles drops the claim of the owner of ctx on the files of ch,
// removing those no owner holds any more. A file whose removal fails
// stays the owner's, where it is: a CleanUp again (the issuance flow's
// Sweep) tries it there, wherever the owner's directory is by then.
func (h *HTTP01Files) removeFiles(ctx context.Context, ch acmeclient.Challenge) error {
	key := answerKey(ctx, ch)
	path, ok, err := h.path(ctx, ch) // for a file this process did not write
	h.mu.Lock()
	defer h.mu.Unlock()
	paths := h.wrote[key]
	delete(h.wrote, key)
	if len(paths) == 0 {
		if !ok || err != nil {
			return err
		}
		paths = []string{path}
	}
	var errs []error
	var left []string
	for _, p := range paths {
		o := h.held[p]
		o.drop(ownerOf(ctx))
		if len(o) > 0 {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("http-01 for %s: remove answer file: %w", ch.Identifier.Value, err))
			h.held[p] = owners{ownerOf(ctx): {}}
			left = append(left, p)
			continue
		}
		delete(h.held, p)
	}
	if len(left) > 0 {
		h.wrote[key] = left
	}
	return errors.Join(errs...)
}

// answerKey names ch as presented by the owner of ctx.
func answerKey(ctx context.Context, ch acmeclient.Challenge) string {
	return ownerOf(ctx) + "\x00" + ch.Token
}

// path returns the answer file of ch for the owner of ctx; ok is false
// when that owner has no directory.
func (h *HTTP01Files) path(ctx context.Context, ch acmeclient.Challenge) (string, bool, error) {
	dir := h.dirOf(ownerOf(ctx))
	if dir == "" {
		return "", false, nil
	}
	if !ValidToken(ch.Token) {
		return "", true, fmt.Errorf("http-01 for %s: token %q is not in the ACME token alphabet", ch.Identifier.Value, ch.Token)
	}
	return filepath.Join(dir, ch.Token), true, nil
}

// writeAnswer writes keyAuth to path through a temporary file in the same
// directory, mode AnswerFileMode whatever the umask.
func writeAnswer(path, keyAuth string) error {
	dir := filepath.Dir(path)
	t, err := os.CreateTemp(dir, ".answer.tmp-*")
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("write answer file in %s: permission denied: needs write and search permission on the directory: %w", dir, err)
		}
		return fmt.Errorf("write answer file: %w", err)
	}
	defer os.Remove(t.Name()) // fails harmlessly once renamed
	err = t.Chmod(AnswerFileMode)
	if err == nil {
		_, err = t.WriteString(keyAuth)
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(t.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write answer file %s: %w", path, err)
	}
	return nil
}

var _ Solver = (*HTTP01Files)(nil)
