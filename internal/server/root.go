package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// retireGrace is how long a replaced os.Root stays open: a request that
// loaded it just before the swap still opens its file through it.
const retireGrace = time.Minute

// rootDir is a static site's directory, held open as an os.Root. The
// path is watched: when it comes to name another directory (a deploy
// that swaps a "current" symlink), the new directory is opened and
// served from then on, with a cache of its own.
type rootDir struct {
	path   string // absolute
	budget *cacheBudget
	cur    atomic.Pointer[rootState]

	mu      sync.Mutex
	id      fs.FileInfo // the directory cur refers to
	retired bool
	failing bool // a warning was logged; quiet until the path works again
}

// rootState is one opened directory and the cache of its files.
type rootState struct {
	root  *os.Root
	dir   *os.File // the same directory for fileCache.fresh; nil if none
	cache *fileCache
}

// retire empties the cache at once (entries already handed out stay
// valid) and closes the directory after grace, when no request that
// loaded this state can still be about to open through it.
func (st *rootState) retire(grace time.Duration) {
	st.cache.clear()
	if grace <= 0 {
		st.close()
		return
	}
	time.AfterFunc(grace, st.close)
}

func (st *rootState) close() {
	st.root.Close()
	if st.dir != nil {
		st.dir.Close()
	}
}

func openRootDir(path string, budget *cacheBudget) (*rootDir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", path, err)
	}
	r, id, err := openRoot(abs)
	if err != nil {
		return nil, err
	}
	d := &rootDir{path: abs, budget: budget, id: id}
	d.cur.Store(d.newState(r, id))
	return d, nil
}

func (d *rootDir) newState(r *os.Root, id fs.FileInfo) *rootState {
	return &rootState{root: r, dir: statDir(d.path, id), cache: newFileCache(d.budget)}
}

func openRoot(path string) (*os.Root, fs.FileInfo, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, nil, fmt.Errorf("root: %w", err)
	}
	fi, err := r.Stat(".")
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("root: %w", err)
	}
	return r, fi, nil
}

// state returns the directory to serve from.
func (d *rootDir) state() *rootState { return d.cur.Load() }

// check reopens the root if its path now names another directory. A
// path that vanished or cannot be opened keeps the old directory in
// service.
func (d *rootDir) check(log *slog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fi, err := os.Stat(d.path)
	if err != nil {
		d.warn(log, "static root unavailable; serving the directory opened before", err)
		return
	}
	if d.retired || os.SameFile(fi, d.id) {
		d.failing = false
		return
	}
	r, id, err := openRoot(d.path)
	if err != nil {
		d.warn(log, "static root changed but cannot be opened", err)
		return
	}
	d.failing = false
	old := d.cur.Swap(d.newState(r, id))
	d.id = id
	old.retire(retireGrace)
	log.Info("static root now names another directory", "root", d.path)
}

func (d *rootDir) warn(log *slog.Logger, msg string, err error) {
	if !d.failing {
		log.Warn(msg, "root", d.path, "error", err)
	}
	d.failing = true
}

// retire closes the root after the grace period; it must no longer be
// reachable from the published table.
func (d *rootDir) retire(grace time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.retired {
		return
	}
	d.retired = true
	d.cur.Load().retire(grace)
}
