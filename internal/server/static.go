package server

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// static serves files from a rootDir. Every open goes through os.Root,
// which refuses names and symbolic links that lead outside the
// directory; the path checks before it reject what no file name needs.
// A file already in the cache is checked with the same rule by the
// kernel (fileCache.fresh) rather than by os.Root's walk.
type static struct {
	root   *rootDir
	log    *slog.Logger
	bodies sync.Pool // *fileBody
}

func (h *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = allowGetHead
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, code := fileName(r)
	if code != 0 {
		http.Error(w, http.StatusText(code), code)
		return
	}
	st := h.root.state()
	file := indexName(name)
	if e := st.cache.fresh(st.dir, file); e != nil {
		e.serve(w, r, file)
		return
	}
	fi, err := st.root.Stat(name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if fi.IsDir() {
		if file == name {
			redirectToDir(w, r)
			return
		}
		name = file
		if fi, err = st.root.Stat(name); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	h.serveFile(w, r, st, name, fi)
}

// indexName is the file a clean name from fileName stands for: the name
// itself, or a directory's index.html when it is "." or ends in "/".
func indexName(name string) string {
	switch {
	case name == ".":
		return "index.html"
	case strings.HasSuffix(name, "/"):
		return name + "index.html"
	}
	return name
}

var allowGetHead = []string{"GET, HEAD"}[:1:1]

// openFlags opens files O_NONBLOCK, which regular files ignore: os then
// skips the fcntl calls that switch a descriptor to non-blocking and back
// around its (failing) poller registration, four system calls per open.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// serveFile serves a regular file that fi, a stat taken just now,
// describes: from the cache if it is small, else from disk.
func (h *static) serveFile(w http.ResponseWriter, r *http.Request, st *rootState, name string, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if e := st.cache.lookup(st.root, name, fi); e != nil {
		e.serve(w, r, name)
		return
	}
	f, err := st.root.OpenFile(name, openFlags, 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	setContentType(w.Header(), contentType(name))
	w.Header()["Etag"] = []string{etagOf(fi.ModTime(), fi.Size())}
	b, _ := h.bodies.Get().(*fileBody)
	if b == nil {
		b = new(fileBody)
	}
	*b = fileBody{f: f, size: fi.Size()}
	http.ServeContent(w, r, name, fi.ModTime(), b)
	*b = fileBody{}
	h.bodies.Put(b)
}

// setContentType sets a file's Content-Type unless the site's headers
// config already set one, which wins (it is in h before the handler
// runs). With the header present, http.ServeContent never sniffs.
func setContentType(h http.Header, ctype []string) {
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = ctype
	}
}

// redirectToDir adds the slash to a directory's URL. The target is
// built from the path alone, so it cannot lead to another host.
func redirectToDir(w http.ResponseWriter, r *http.Request) {
	u := url.URL{Path: "/" + strings.TrimLeft(r.URL.Path, "/") + "/", RawQuery: r.URL.RawQuery}
	w.Header()["Location"] = []string{u.String()}
	w.WriteHeader(http.StatusMovedPermanently)
}

// etagOf is nginx's validator: modification time and size in hex.
func etagOf(mod time.Time, size int64) string {
	var b [40]byte
	e := append(b[:0], '"')
	e = strconv.AppendInt(e, mod.Unix(), 16)
	e = append(e, '-')
	e = strconv.AppendInt(e, size, 16)
	e = append(e, '"')
	return string(e)
}

func (h *static) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, "404 page not found", http.StatusNotFound)
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, "403 forbidden", http.StatusForbidden)
	default:
		// Escapes refused by os.Root, ENOTDIR, loops: all look like a
		// missing file from outside.
		h.log.Debug("static file refused", "path", r.URL.Path, "error", err)
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

// fileName turns the request path into a name relative to the root, or
// an HTTP status for paths no file may have: ".." segments, encoded
// slashes, backslashes and NUL (400), hidden files other than
// .well-known (404). It does not allocate.
func fileName(r *http.Request) (string, int) {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return "", http.StatusBadRequest
	}
	if raw := r.URL.RawPath; raw != "" && containsEncodedSlash(raw) {
		return "", http.StatusBadRequest
	}
	if strings.IndexByte(p, '\\') >= 0 || strings.IndexByte(p, 0) >= 0 {
		return "", http.StatusBadRequest
	}
	for rest := p[1:]; rest != ""; {
		seg, next, _ := strings.Cut(rest, "/")
		if seg == ".." {
			return "", http.StatusBadRequest
		}
		if len(seg) > 1 && seg[0] == '.' && seg != ".well-known" {
			return "", http.StatusNotFound
		}
		rest = next
	}
	// One spelling per file: "//" and "/./" removed (RFC 3986 §5.2.4),
	// so that aliases of one file neither take cache entries of their
	// own nor answer differently; a trailing slash stays, it asks for a
	// directory.
	name := path.Clean(p)[1:]
	if name == "" {
		return ".", 0
	}
	if strings.HasSuffix(p, "/") {
		name += "/"
	}
	return name, 0
}

func containsEncodedSlash(raw string) bool {
	for i := 0; i+2 < len(raw); i++ {
		if raw[i] == '%' && (raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F') ||
			raw[i+1] == '5' && (raw[i+2] == 'c' || raw[i+2] == 'C')) {
			return true
		}
	}
	return false
}
