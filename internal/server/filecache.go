package server

import (
	"bytes"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the small-file cache.
const (
	DefaultFileCacheBytes = 16 << 20  // all roots of a Server together
	maxCachedFile         = 256 << 10 // larger files are always read from disk
)

// cacheBudget is the byte budget shared by every fileCache of a Server.
type cacheBudget struct {
	used atomic.Int64
	max  int64
}

func (b *cacheBudget) reserve(n int64) bool {
	if b.used.Add(n) <= b.max {
		return true
	}
	b.used.Add(-n)
	return false
}

func (b *cacheBudget) release(n int64) { b.used.Add(-n) }

// fileCache keeps small files of one directory in memory with their
// response headers precomputed. An entry is used only while a stat of the
// name still shows the same file (device, inode, size, modification and
// change time), so a changed or replaced file is read again on the very
// next request: the cache saves the open, read and close, never
// freshness. When the budget is spent, random entries make room.
type fileCache struct {
	budget *cacheBudget // nil: caching off
	mu     sync.RWMutex
	m      map[string]*cachedFile
	bytes  int64 // this cache's share of the budget
	closed bool  // cleared for good: its directory is retired
}

func newFileCache(b *cacheBudget) *fileCache {
	return &fileCache{budget: b, m: make(map[string]*cachedFile)}
}

// cachedFile is one file's content and headers; immutable.
type cachedFile struct {
	id      fileID
	modTime time.Time
	data    []byte
	ctype   []string
	lastMod []string // nil when the modification time is unknown
	etag    []string
	clen    []string
}

// fileID is what identifies one version of a file.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

// lookup returns the cached file for name if fi (a fresh stat) still
// describes it, reading the file into the cache otherwise. It returns nil
// when the file cannot be cached; the caller then serves it from disk.
func (c *fileCache) lookup(root *os.Root, name string, fi fs.FileInfo) *cachedFile {
	if c.budget == nil || fi.Size() > maxCachedFile {
		return nil
	}
	id, ok := idOf(fi)
	if !ok {
		return nil
	}
	c.mu.RLock()
	e := c.m[name]
	c.mu.RUnlock()
	if e != nil && e.id == id {
		return e
	}
	e = readCachedFile(root, name)
	if e != nil {
		c.store(name, e)
	}
	return e
}

// fresh returns the cached file for name when a check of name below
// dir shows the very file that was cached (statID), and nil otherwise:
// not cached, changed, gone, resolved out of the directory, or no dir.
// It spares a cached file's request the walk os.Root makes, an openat
// and a close per directory of the name; whatever it does not vouch for
// goes through os.Root. The read lock is held across the check, so
// clear, which comes before dir is closed, cannot pass it.
func (c *fileCache) fresh(dir *os.File, name string) *cachedFile {
	if dir == nil || c.budget == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.m[name]
	if e == nil || c.closed {
		return nil
	}
	if id, ok := statID(int(dir.Fd()), name); !ok || id != e.id {
		return nil
	}
	return e
}

func readCachedFile(root *os.Root, name string) *cachedFile {
	f, err := root.OpenFile(name, openFlags, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxCachedFile {
		return nil
	}
	id, ok := idOf(fi)
	if !ok {
		return nil
	}
	data := make([]byte, fi.Size())
	if n, err := f.ReadAt(data, 0); n != len(data) || err != nil && err != io.EOF {
		return nil
	}
	return newCachedFile(name, id, fi.ModTime(), data)
}

// newCachedFile computes the headers http.ServeContent would send, with
// the Content-Type from the name (contentType), never from the data.
func newCachedFile(name string, id fileID, mod time.Time, data []byte) *cachedFile {
	e := &cachedFile{
		id:      id,
		modTime: mod,
		data:    data,
		ctype:   contentType(name),
		etag:    []string{etagOf(mod, id.size)}[:1:1],
		clen:    []string{strconv.Itoa(len(data))}[:1:1],
	}
	if !mod.IsZero() && !mod.Equal(time.Unix(0, 0)) {
		e.lastMod = []string{mod.UTC().Format(http.TimeFormat)}[:1:1]
	}
	return e
}

func (c *fileCache) store(name string, e *cachedFile) {
	n := int64(len(e.data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if old := c.m[name]; old != nil {
		c.drop(name, old)
	}
	for !c.budget.reserve(n) {
		if !c.evictOne() {
			return
		}
	}
	c.m[name] = e
	c.bytes += n
}

// evictOne drops an arbitrary entry (map order is random); c.mu held.
func (c *fileCache) evictOne() bool {
	for name, e := range c.m {
		c.drop(name, e)
		return true
	}
	return false
}

func (c *fileCache) drop(name string, e *cachedFile) {
	delete(c.m, name)
	c.bytes -= int64(len(e.data))
	c.budget.release(int64(len(e.data)))
}

// clear empties the cache for good and returns its bytes to the budget.
func (c *fileCache) clear() {
	if c.budget == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.budget.release(c.bytes)
	c.bytes = 0
	clear(c.m)
}

var acceptRanges = []string{"bytes"}[:1:1]

// serve answers from memory. A plain GET or HEAD is written directly
// with the precomputed headers; ranges and conditional requests go
// through http.ServeContent.
func (e *cachedFile) serve(w http.ResponseWriter, r *http.Request, name string) {
	h := w.Header()
	setContentType(h, e.ctype)
	h["Etag"] = e.etag
	if !plainGet(r.Header) {
		http.ServeContent(w, r, name, e.modTime, bytes.NewReader(e.data))
		return
	}
	if e.lastMod != nil {
		h["Last-Modified"] = e.lastMod
	}
	h["Accept-Ranges"] = acceptRanges
	h["Content-Length"] = e.clen
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(e.data)
	}
}

// plainGet reports a request without range or precondition headers.
func plainGet(h http.Header) bool {
	for _, k := range [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if _, ok := h[k]; ok {
			return false
		}
	}
	return true
}
