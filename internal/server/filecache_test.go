package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileCacheFreshness changes files every way a deploy does and
// expects the next request to see the change.
func TestFileCacheFreshness(t *testing.T) {
	root := staticSite(t)
	p := filepath.Join(root, "hello.txt")
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	expect := func(want string, code int) {
		t.Helper()
		resp, body := get(t, cl, "https://a.test/hello.txt")
		if resp.StatusCode != code || code == 200 && body != want {
			t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, code, want)
		}
	}
	expect("hello, world\n", 200)
	expect("hello, world\n", 200) // from the cache

	// In place, same size, modification time put back: the change time differs.
	fi, _ := os.Stat(p)
	if err := os.WriteFile(p, []byte("HELLO, WORLD\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime())
	expect("HELLO, WORLD\n", 200)

	// Replaced by rename.
	writeFile(t, p+".new", "new version\n")
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	expect("new version\n", 200)

	// Made unreadable, then removed.
	if os.Geteuid() != 0 {
		os.Chmod(p, 0)
		expect("", 403)
		os.Chmod(p, 0o644)
	}
	os.Remove(p)
	expect("", 404)
}

func TestFileCacheBudget(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"a", "b", "c", "d"} {
		writeFile(t, filepath.Join(root, n+".txt"), strings.Repeat(n, 1000))
	}
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{FileCacheBytes: 2500,
		Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	for range 3 {
		for _, n := range []string{"a", "b", "c", "d"} {
			if _, body := get(t, cl, "https://a.test/"+n+".txt"); body != strings.Repeat(n, 1000) {
				t.Fatalf("%s.txt: %q", n, body[:10])
			}
		}
	}
	if used := ts.budget.used.Load(); used > 2500 || used < 2000 {
		t.Errorf("cache holds %d bytes with a budget of 2500", used)
	}
	// Reloading onto another directory returns the old cache's bytes.
	other := staticSite(t)
	if err := ts.Reload([]Site{{Names: []string{"a.test"}, Root: other, Cert: c.source()}}); err != nil {
		t.Fatal(err)
	}
	if used := ts.budget.used.Load(); used != 0 {
		t.Errorf("cache of the replaced root still holds %d bytes", used)
	}
	if _, body := get(t, cl, "https://a.test/hello.txt"); body != "hello, world\n" {
		t.Errorf("new root: %q", body)
	}
}

func TestFileCacheOff(t *testing.T) {
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{FileCacheBytes: -1,
		Sites: []Site{{Names: []string{"a.test"}, Root: staticSite(t), Cert: c.source()}}}, c)
	if _, body := get(t, ts.client(t, false), "https://a.test/hello.txt"); body != "hello, world\n" {
		t.Errorf("body %q", body)
	}
	if ts.budget != nil {
		t.Error("cache on despite FileCacheBytes < 0")
	}
}

// TestFileCacheFreshPath covers the one-fstatat check of a cached file
// (fileCache.fresh): it vouches for the cached file only, and a path
// that now leads elsewhere, through a directory swapped for a symbolic
// link to outside the root, goes back through os.Root, which refuses it.
func TestFileCacheFreshPath(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "www")
	name := filepath.Join("a", "b", "c.txt")
	writeFile(t, filepath.Join(root, name), "inside\n")
	writeFile(t, filepath.Join(base, "outside", "b", "c.txt"), "TOPSECRET\n")

	d, err := openRootDir(root, &cacheBudget{max: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer d.retire(0)
	st := d.state()
	if st.dir == nil {
		t.Fatal("no directory descriptor for the fast check")
	}
	fi, err := st.root.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if st.cache.lookup(st.root, name, fi) == nil {
		t.Fatal("not cached")
	}
	if e := st.cache.fresh(st.dir, name); e == nil || string(e.data) != "inside\n" {
		t.Fatalf("fresh = %v, want the cached file", e)
	}
	if st.cache.fresh(st.dir, "a/b/other.txt") != nil {
		t.Error("fresh vouched for a name never cached")
	}

	// Changed in place: no longer vouched for.
	writeFile(t, filepath.Join(root, name), "changed\n")
	if st.cache.fresh(st.dir, name) != nil {
		t.Error("fresh vouched for a changed file")
	}

	// Through the server: cache it again, then swap directory a for a
	// link to outside the root.
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	for range 2 {
		if resp, body := get(t, cl, "https://a.test/a/b/c.txt"); resp.StatusCode != 200 || body != "changed\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	if err := os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, cl, "https://a.test/a/b/c.txt"); resp.StatusCode == 200 || strings.Contains(body, "TOPSECRET") {
		t.Fatalf("through a link out of the root: %d %q", resp.StatusCode, body)
	}
}

// TestFileCacheFreshDirMovedOut: a directory moved out of the root (to
// unpublish it) and linked back under its old name keeps its files'
// inodes and times, so a check that follows the link would still vouch
// for the cached files. The check must refuse what os.Root refuses, for
// cached and uncached files alike. Found by review of the first
// one-fstatat version, which answered 200 for the cached file.
func TestFileCacheFreshDirMovedOut(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "www")
	writeFile(t, filepath.Join(root, "drafts", "plan.txt"), "unpublished plan\n")
	writeFile(t, filepath.Join(root, "drafts", "other.txt"), "other draft\n")
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	cl := ts.client(t, false)
	for range 2 {
		if resp, body := get(t, cl, "https://a.test/drafts/plan.txt"); resp.StatusCode != 200 || body != "unpublished plan\n" {
			t.Fatalf("before the move: %d %q", resp.StatusCode, body)
		}
	}
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "drafts"), filepath.Join(private, "drafts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(private, "drafts"), filepath.Join(root, "drafts")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/drafts/other.txt", "/drafts/plan.txt", "/drafts//plan.txt", "/./drafts/plan.txt"} {
		if resp, body := get(t, cl, "https://a.test"+p); resp.StatusCode == 200 {
			t.Errorf("%s through a link out of the root: %d %q", p, resp.StatusCode, body)
		}
	}
}

// TestFileCacheOneEntryPerFile: the spellings of one file's path ("//",
// "/./", a trailing "/.") share one cache entry, so that one small file
// asked for in many spellings cannot fill the cache and push the others
// out, and every spelling answers alike.
func TestFileCacheOneEntryPerFile(t *testing.T) {
	root := filepath.Join(t.TempDir(), "www")
	writeFile(t, filepath.Join(root, "a", "b.txt"), "inside\n")
	writeFile(t, filepath.Join(root, "d", "index.html"), "index\n")
	c := newTestCert(t, "a.test")
	ts := startServer(t, Options{Sites: []Site{{Names: []string{"a.test"}, Root: root, Cert: c.source()}}}, c)
	send := func(p string) (int, string) {
		return rawRequest(t, ts.httpsAddr, "a.test", ts.roots, "GET "+p+" HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
	}
	for range 2 {
		for _, p := range []string{"/a/b.txt", "//a/b.txt", "/a//b.txt", "/a/./b.txt", "/./a/b.txt", "/a/b.txt/."} {
			if code, resp := send(p); code != 200 || !strings.HasSuffix(resp, "\r\n\r\ninside\n") {
				t.Errorf("GET %s: %d %q", p, code, resp)
			}
		}
		for _, p := range []string{"/d/", "/d//", "/./d/"} {
			if code, resp := send(p); code != 200 || !strings.HasSuffix(resp, "\r\n\r\nindex\n") {
				t.Errorf("GET %s: %d %q", p, code, resp)
			}
		}
	}
	if code, _ := send("/a/b.txt/"); code != 404 {
		t.Errorf("GET /a/b.txt/ (a file asked for as a directory): %d, want 404", code)
	}
	st := ts.table.Load().roots[root].state()
	st.cache.mu.RLock()
	defer st.cache.mu.RUnlock()
	if len(st.cache.m) != 2 || st.cache.m["a/b.txt"] == nil || st.cache.m["d/index.html"] == nil {
		keys := []string{}
		for k := range st.cache.m {
			keys = append(keys, k)
		}
		t.Errorf("cache keys %q, want a/b.txt and d/index.html only", keys)
	}
}
