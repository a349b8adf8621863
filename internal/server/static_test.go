package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// staticSite builds a root with a few files and returns it.
func staticSite(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "www")
	writeFile(t, filepath.Join(root, "index.html"), "<h1>home</h1>")
	writeFile(t, filepath.Join(root, "hello.txt"), "hello, world\n")
	writeFile(t, filepath.Join(root, "style.css"), "body{}")
	writeFile(t, filepath.Join(root, "sub", "index.html"), "<p>sub</p>")
	writeFile(t, filepath.Join(root, "noindex", "a.txt"), "a")
	writeFile(t, filepath.Join(root, ".env"), "SECRET=1")
	writeFile(t, filepath.Join(root, ".well-known", "security.txt"), "Contact: x")
	return root
}

func TestStatic(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	tests := []struct {
		path, want, ctype string
		code              int
	}{
		{"/", "<h1>home</h1>", "text/html; charset=utf-8", 200},
		{"/index.html", "<h1>home</h1>", "text/html; charset=utf-8", 200},
		{"/hello.txt", "hello, world\n", "text/plain; charset=utf-8", 200},
		{"/style.css", "body{}", "text/css; charset=utf-8", 200},
		{"/sub/", "<p>sub</p>", "text/html; charset=utf-8", 200},
		{"/sub", "", "", 301},
		{"/noindex/", "", "", 404},
		{"/missing", "", "", 404},
		{"/hello.txt/x", "", "", 404},
		{"/.env", "", "", 404},
		{"/.well-known/security.txt", "Contact: x", "text/plain; charset=utf-8", 200},
	}
	for _, tt := range tests {
		resp, body := get(t, cl, "https://a.test"+tt.path)
		if resp.StatusCode != tt.code {
			t.Errorf("GET %s: status %d, want %d", tt.path, resp.StatusCode, tt.code)
			continue
		}
		if tt.code == 200 && (body != tt.want || resp.Header.Get("Content-Type") != tt.ctype) {
			t.Errorf("GET %s: %q (%s), want %q (%s)", tt.path, body, resp.Header.Get("Content-Type"), tt.want, tt.ctype)
		}
		if tt.code == 301 && resp.Header.Get("Location") != tt.path+"/" {
			t.Errorf("GET %s: Location %q", tt.path, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "noindex") || strings.Contains(body, "a.txt") {
			t.Errorf("GET %s: looks like a directory listing: %q", tt.path, body)
		}
	}
}

func TestStaticConditionalRangeHead(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	resp, _ := get(t, cl, "https://a.test/hello.txt")
	lm, etag := resp.Header.Get("Last-Modified"), resp.Header.Get("Etag")
	if lm == "" || etag == "" {
		t.Fatalf("no validators: Last-Modified %q, ETag %q", lm, etag)
	}
	if resp, _ := get(t, cl, "https://a.test/hello.txt", "If-Modified-Since", lm); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-Modified-Since: status %d, want 304", resp.StatusCode)
	}
	if resp, _ := get(t, cl, "https://a.test/hello.txt", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
	resp, body := get(t, cl, "https://a.test/hello.txt", "Range", "bytes=7-11")
	if resp.StatusCode != http.StatusPartialContent || body != "world" {
		t.Errorf("Range: %d %q, want 206 \"world\"", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodHead, "https://a.test/hello.txt", nil)
	hr, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != 200 || hr.ContentLength != 13 {
		t.Errorf("HEAD: %d, length %d", hr.StatusCode, hr.ContentLength)
	}
	req, _ = http.NewRequest(http.MethodPost, "https://a.test/hello.txt", strings.NewReader("x"))
	pr, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusMethodNotAllowed || pr.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", pr.StatusCode, pr.Header.Get("Allow"))
	}
}

// TestStaticEscapes sends every known way out of the root and checks that
// the secret next to it never comes back.
func TestStaticEscapes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "www")
	writeFile(t, filepath.Join(root, "index.html"), "home")
	writeFile(t, filepath.Join(root, "sub", "x.txt"), "x")
	secret := filepath.Join(base, "secret.txt")
	writeFile(t, secret, "TOPSECRET")
	writeFile(t, filepath.Join(base, "outside", "secret.txt"), "TOPSECRET")
	for link, target := range map[string]string{
		"rel":           "../secret.txt",
		"abs":           secret,
		"dirlink":       "..",
		"absdir":        base,
		"sub/deep":      "../../secret.txt",
		"outsidelink":   "../outside",
		"inside-ok.txt": "sub/x.txt",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	paths := []string{
		"/../secret.txt", "/sub/../../secret.txt", "/./../secret.txt", "//../secret.txt",
		"/%2e%2e/secret.txt", "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
		"/sub%2f..%2f..%2fsecret.txt", "/..%5csecret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
		"/%252e%252e/secret.txt", "/%252e%252e%252fsecret.txt", "/..%252fsecret.txt", "/%2e%2e%00/secret.txt",
		"/rel", "/abs", "/dirlink/secret.txt", "/absdir/secret.txt", "/sub/deep", "/outsidelink/secret.txt",
		"/dirlink/www/../secret.txt", "/dirlink", "/absdir/",
	}
	for _, p := range paths {
		req := "GET " + p + " HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
		code, resp := rawRequest(t, ts.httpsAddr, "a.test", ts.roots, req)
		if strings.Contains(resp, "TOPSECRET") || code == http.StatusOK {
			t.Errorf("GET %s: status %d, response %q", p, code, resp)
		}
	}
	if code, resp := rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET /inside-ok.txt HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"); code != 200 || !strings.HasSuffix(resp, "x") {
		t.Errorf("symlink inside the root: %d %q", code, resp)
	}
}

func TestOversizedHeaders(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}}, c)
	big := strings.Repeat("a", 80<<10)
	code, _ := rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: "+big+"\r\n\r\n")
	if code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("80 KiB header: status %d, want 431", code)
	}
	code, _ = rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: "+big[:32<<10]+"\r\nConnection: close\r\n\r\n")
	if code != http.StatusOK {
		t.Errorf("32 KiB header: status %d, want 200", code)
	}
}

// TestRootSymlinkSwap follows a deploy that repoints the root's symlink.
func TestRootSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	writeFile(t, filepath.Join(base, "v1", "index.html"), "v1")
	writeFile(t, filepath.Join(base, "v2", "index.html"), "v2")
	cur := filepath.Join(base, "current")
	if err := os.Symlink("v1", cur); err != nil {
		t.Fatal(err)
	}
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{CertCheckInterval: 20 * time.Millisecond,
		Sites: []Site{{Names: []string{"a.test"}, Root: cur, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	if _, body := get(t, cl, "https://a.test/"); body != "v1" {
		t.Fatalf("before the swap: %q", body)
	}
	tmp := filepath.Join(base, "tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, body := get(t, cl, "https://a.test/"); return body == "v2" })
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func TestFileName(t *testing.T) {
	tests := []struct {
		path, raw, name string
		code            int
	}{
		{"/", "", ".", 0},
		{"/a/b.txt", "", "a/b.txt", 0},
		{"/a/", "", "a/", 0},
		{"//a", "", "a", 0},
		{"/./a", "", "a", 0},
		{"/a//b/./c", "", "a/b/c", 0},
		{"/a/b/.", "", "a/b", 0},
		{"/a//", "", "a/", 0},
		{"/.", "", ".", 0},
		{"//", "", ".", 0},
		{"/../a", "", "", 400},
		{"/a/..", "", "", 400},
		{"/a/../b", "", "", 400},
		{"/a/b", "/a%2fb", "", 400},
		{"/a\\b", "/a%5cb", "", 400},
		{"/a\\..\\b", "", "", 400},
		{"/a\x00", "", "", 400},
		{"/.git/config", "", "", 404},
		{"/a/.htpasswd", "", "", 404},
		{"/.well-known/x", "", ".well-known/x", 0},
		{"/..a", "", "", 404},
		{"/a..b", "", "a..b", 0},
		{"", "", "", 400},
	}
	for _, tt := range tests {
		r := &http.Request{URL: mustURL(t, tt.path, tt.raw)}
		name, code := fileName(r)
		if name != tt.name || code != tt.code {
			t.Errorf("fileName(%q) = %q, %d; want %q, %d", tt.path, name, code, tt.name, tt.code)
		}
	}
}

// TestStaticLargeFile covers the sendfile path (plain HTTP/1) and the
// buffered paths (TLS, HTTP/2), with and without a range.
func TestStaticLargeFile(t *testing.T) {
	root := staticSite(t)
	var sb strings.Builder
	for i := 0; sb.Len() < 300<<10; i++ {
		fmt.Fprintf(&sb, "line %d\n", i)
	}
	big := sb.String()
	writeFile(t, filepath.Join(root, "big.txt"), big)
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	clients := map[string]*http.Client{"plain": ts.plainClient(t), "h1": ts.client(t, false), "h2": ts.client(t, true)}
	for name, cl := range clients {
		scheme := "https"
		if name == "plain" {
			scheme = "http"
		}
		resp, body := get(t, cl, scheme+"://a.test/big.txt")
		if resp.StatusCode != 200 || body != big {
			t.Errorf("%s: status %d, %d bytes of %d, equal %v", name, resp.StatusCode, len(body), len(big), body == big)
		}
		resp, body = get(t, cl, scheme+"://a.test/big.txt", "Range", "bytes=1000-200999")
		if resp.StatusCode != 206 || body != big[1000:201000] {
			t.Errorf("%s range: status %d, %d bytes", name, resp.StatusCode, len(body))
		}
	}
}
