package server

import (
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// htmlPayload is what an uploaded file may hold: content sniffing calls
// it text/html.
const htmlPayload = "<html><script>alert(document.cookie)</script></html>"

// wantTypes is the Content-Type each extension must be served with,
// written out here independently of the table in mimetypes.go.
var wantTypes = map[string]string{
	"html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "shtml": "text/html; charset=utf-8",
	"css": "text/css; charset=utf-8", "xml": "text/xml; charset=utf-8",
	"js": "text/javascript; charset=utf-8", "mjs": "text/javascript; charset=utf-8",
	"json": "application/json", "map": "application/json", "jsonld": "application/ld+json",
	"webmanifest": "application/manifest+json",
	"txt":         "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8",
	"csv": "text/csv; charset=utf-8", "ics": "text/calendar; charset=utf-8",
	"rss": "application/rss+xml", "atom": "application/atom+xml",
	"gif": "image/gif", "jpeg": "image/jpeg", "jpg": "image/jpeg", "png": "image/png",
	"svg": "image/svg+xml", "svgz": "image/svg+xml", "webp": "image/webp", "avif": "image/avif",
	"ico": "image/x-icon", "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff",
	"wasm": "application/wasm", "pdf": "application/pdf",
	"crt": "application/x-x509-ca-cert", "der": "application/x-x509-ca-cert", "pem": "application/x-x509-ca-cert",
	"woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
	"eot": "application/vnd.ms-fontobject",
	"zip": "application/zip", "gz": "application/gzip", "tar": "application/x-tar",
	"bz2": "application/x-bzip2", "7z": "application/x-7z-compressed", "xz": "application/x-xz",
	"zst": "application/zstd",
	"mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "opus": "audio/ogg",
	"m4a": "audio/mp4", "aac": "audio/aac", "wav": "audio/wav", "flac": "audio/flac",
	"mp4": "video/mp4", "m4v": "video/mp4", "webm": "video/webm", "ogv": "video/ogg",
	"mov": "video/quicktime", "avi": "video/x-msvideo", "mkv": "video/x-matroska",
}

// cacheModes runs f against a server with the small-file cache on (the
// precomputed headers) and off (http.ServeContent from disk).
func cacheModes(t *testing.T, f func(t *testing.T, cacheBytes int64)) {
	t.Run("cached", func(t *testing.T) { f(t, 0) })
	t.Run("uncached", func(t *testing.T) { f(t, -1) })
}

// startStatic serves root as a.test and returns a client for it.
func startStatic(t *testing.T, root string, cacheBytes int64, headers map[string]string) *http.Client {
	t.Helper()
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{FileCacheBytes: cacheBytes,
		Sites: []Site{{Names: []string{"a.test"}, Root: root, Headers: headers, Cert: c.source()}}}, c)
	return ts.client(t, false)
}

// wantType fetches path (twice, so the second answer comes from the
// cache when it is on) and checks its Content-Type and body.
func wantType(t *testing.T, cl *http.Client, path, ctype string) {
	t.Helper()
	for range 2 {
		resp, body := get(t, cl, "https://a.test"+path)
		if got := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || got != ctype || body != htmlPayload {
			t.Errorf("GET %s: %d, Content-Type %q, want 200 %q", path, resp.StatusCode, got, ctype)
			return
		}
	}
}

// TestStaticNoSniff: a file whose extension is missing or unknown is
// application/octet-stream whatever it holds, as nginx's default_type;
// sniffing would make an uploaded HTML file text/html (stored XSS).
func TestStaticNoSniff(t *testing.T) {
	root := t.TempDir()
	names := []string{"upload_noext", "upload.dat", "UPLOAD.DAT", "dir.html/noext", "trailing.", "x.html.unknownext"}
	for _, n := range names {
		writeFile(t, filepath.Join(root, n), htmlPayload)
	}
	cacheModes(t, func(t *testing.T, cacheBytes int64) {
		cl := startStatic(t, root, cacheBytes, nil)
		for _, n := range names {
			wantType(t, cl, "/"+n, "application/octet-stream")
		}
		resp, _ := get(t, cl, "https://a.test/upload_noext", "Range", "bytes=0-5")
		if got := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusPartialContent || got != "application/octet-stream" {
			t.Errorf("Range: %d, Content-Type %q", resp.StatusCode, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("X-Content-Type-Options %q, want nosniff", got)
		}
	})
}

// TestStaticContentTypes: every extension of the table, in lower and
// upper case, gets its type, never one sniffed from the (HTML) content.
func TestStaticContentTypes(t *testing.T) {
	root := t.TempDir()
	for ext := range wantTypes {
		writeFile(t, filepath.Join(root, "f."+ext), htmlPayload)
		writeFile(t, filepath.Join(root, "U."+strings.ToUpper(ext)), htmlPayload)
	}
	writeFile(t, filepath.Join(root, "Mixed.Html"), htmlPayload)
	cacheModes(t, func(t *testing.T, cacheBytes int64) {
		cl := startStatic(t, root, cacheBytes, nil)
		for ext, ctype := range wantTypes {
			wantType(t, cl, "/f."+ext, ctype)
			wantType(t, cl, "/U."+strings.ToUpper(ext), ctype)
		}
		wantType(t, cl, "/Mixed.Html", "text/html; charset=utf-8")
	})
}

// TestStaticContentTypeIgnoresHost: types come from our table, not from
// the mime package, which merges the host's /etc/mime.types into its
// own. mime.AddExtensionType stands in for a host whose mime.types says
// otherwise; it changes this test binary's mime table for good, so it
// uses extensions no other test serves.
func TestStaticContentTypeIgnoresHost(t *testing.T) {
	if err := mime.AddExtensionType(".hostext", "text/html; charset=utf-8"); err != nil {
		t.Fatal(err)
	}
	prev := mime.TypeByExtension(".avif")
	if err := mime.AddExtensionType(".avif", "text/html; charset=utf-8"); err != nil {
		t.Fatal(err)
	}
	if prev != "" {
		t.Cleanup(func() { mime.AddExtensionType(".avif", prev) })
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.hostext"), htmlPayload)
	writeFile(t, filepath.Join(root, "b.avif"), htmlPayload)
	cacheModes(t, func(t *testing.T, cacheBytes int64) {
		cl := startStatic(t, root, cacheBytes, nil)
		wantType(t, cl, "/a.hostext", "application/octet-stream")
		wantType(t, cl, "/b.avif", "image/avif")
	})
}

// TestStaticContentTypeSiteHeader: a Content-Type set in the site's
// headers wins over the table, from the cache and from disk alike.
func TestStaticContentTypeSiteHeader(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "page.html"), htmlPayload)
	writeFile(t, filepath.Join(root, "noext"), htmlPayload)
	const forced = "text/plain; charset=utf-8"
	cacheModes(t, func(t *testing.T, cacheBytes int64) {
		cl := startStatic(t, root, cacheBytes, map[string]string{"content-type": forced})
		wantType(t, cl, "/page.html", forced)
		wantType(t, cl, "/noext", forced)
	})
}

// TestContentType covers the name parsing: the extension is that of the
// last path element, in any case, and the lookup does not allocate.
func TestContentType(t *testing.T) {
	tests := []struct{ name, want string }{
		{"index.html", "text/html; charset=utf-8"},
		{"a/b.c/INDEX.HTML", "text/html; charset=utf-8"},
		{"site.webmanifest", "application/manifest+json"},
		{"x.WebManifest", "application/manifest+json"},
		{"a.html/noext", "application/octet-stream"},
		{"noext", "application/octet-stream"},
		{"dot.", "application/octet-stream"},
		{"x.webmanifestx", "application/octet-stream"},
		{"x.html.bak", "application/octet-stream"},
		{"x." + strings.Repeat("a", 300), "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := contentType(tt.name); len(got) != 1 || got[0] != tt.want {
			t.Errorf("contentType(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { contentType("a/B.WOFF2") }); n != 0 {
		t.Errorf("contentType allocates %v times", n)
	}
}
