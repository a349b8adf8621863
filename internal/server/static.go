package server

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// static serves files from a rootDir. Every open goes through os.Root,
// which refuses names and symbolic links that lead outside the
// directory; the path checks before it reject what no file name needs.
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
	h.serveFile(w, r, name)
}

var allowGetHead = []string{"GET, HEAD"}[:1:1]

// openFlags opens files O_NONBLOCK, which regular files ignore: os then
// skips the fcntl calls that switch a descriptor to non-blocking and back
// around its (failing) poller registration, four system calls per open.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

func (h *static) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	f, err := h.root.get().OpenFile(name, openFlags, 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		h.fail(w, r, err)
	case fi.IsDir():
		f.Close()
		h.serveDir(w, r, name)
		return
	default:
		h.serveContent(w, r, name, f, fi)
	}
	f.Close()
}

// serveDir answers a directory: a redirect to add the slash, then its
// index.html. Directories are never listed.
func (h *static) serveDir(w http.ResponseWriter, r *http.Request, name string) {
	p := r.URL.Path
	if !strings.HasSuffix(p, "/") {
		u := url.URL{Path: "/" + strings.TrimLeft(p, "/") + "/", RawQuery: r.URL.RawQuery}
		w.Header()["Location"] = []string{u.String()}
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	index := "index.html"
	if name != "." {
		index = name + "index.html"
	}
	f, err := h.root.get().OpenFile(index, openFlags, 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	h.serveContent(w, r, index, f, fi)
}

func (h *static) serveContent(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi fs.FileInfo) {
	if !fi.Mode().IsRegular() {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	w.Header()["Etag"] = []string{etag(fi)}
	b, _ := h.bodies.Get().(*fileBody)
	if b == nil {
		b = new(fileBody)
	}
	*b = fileBody{f: f, size: fi.Size()}
	http.ServeContent(w, r, name, fi.ModTime(), b)
	*b = fileBody{}
	h.bodies.Put(b)
}

// etag is nginx's validator: modification time and size in hex.
func etag(fi fs.FileInfo) string {
	var b [40]byte
	e := append(b[:0], '"')
	e = strconv.AppendInt(e, fi.ModTime().Unix(), 16)
	e = append(e, '-')
	e = strconv.AppendInt(e, fi.Size(), 16)
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
	name := strings.TrimLeft(p, "/")
	if name == "" {
		return ".", 0
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
