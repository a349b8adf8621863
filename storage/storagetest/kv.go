package storagetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/storage"
)

// testLoadMissing checks that missing keys, including folders of other
// keys and paths below a value, load as fs.ErrNotExist.
func testLoadMissing(t *testing.T, b Backend) {
	s := open(t, b)
	wantNotExist(t, s, "missing")
	wantNotExist(t, s, "no/such/key")
	mustStore(t, s, "dir/file", []byte("x"))
	wantNotExist(t, s, "dir")
	wantNotExist(t, s, "dir/other")
	wantNotExist(t, s, "dir/file/below")
	wantNotExist(t, s, "dir/fil")
}

// testRoundTrip checks that values come back byte for byte, through
// another handle too, and that neither side keeps the caller's slice.
func testRoundTrip(t *testing.T, b Backend) {
	s, other := open(t, b), open(t, b)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	values := map[string][]byte{
		"text":         []byte("hello, world\n"),
		"empty":        {},
		"binary/bytes": all,
		"binary/big":   big,
	}
	for key, v := range values {
		mustStore(t, s, key, v)
	}
	for key, want := range values {
		for _, h := range []storage.Storage{s, other} {
			if got := mustLoad(t, h, key); !bytes.Equal(got, want) {
				t.Errorf("Load(%q) returned %d bytes %.16q, want %d bytes %.16q", key, len(got), got, len(want), want)
			}
		}
	}

	buf := []byte("original")
	mustStore(t, s, "copy", buf)
	buf[0] = 'X'
	got := mustLoad(t, s, "copy")
	if string(got) != "original" {
		t.Errorf("changing the slice passed to Store changed the stored value to %q", got)
	}
	got[0] = 'Y'
	if got := mustLoad(t, s, "copy"); string(got) != "original" {
		t.Errorf("changing the slice returned by Load changed the stored value to %q", got)
	}
}

// testOverwrite checks that Store replaces a value completely, also with a
// shorter or empty one.
func testOverwrite(t *testing.T, b Backend) {
	s := open(t, b)
	long := bytes.Repeat([]byte("0123456789"), 1000)
	mustStore(t, s, "k", long)
	mustStore(t, s, "k", []byte("v2"))
	if got := mustLoad(t, s, "k"); string(got) != "v2" {
		t.Errorf("after overwriting, Load = %.32q (%d bytes), want \"v2\"", got, len(got))
	}
	mustStore(t, s, "k", nil)
	if got := mustLoad(t, s, "k"); len(got) != 0 {
		t.Errorf("after overwriting with an empty value, Load = %.32q (%d bytes)", got, len(got))
	}
	wantList(t, s, "", []string{"k"})
}

// testDelete checks that Delete removes exactly one key, and that deleting
// a missing key or a folder is no error.
func testDelete(t *testing.T, b Backend) {
	s := open(t, b)
	ctx := timeout(t, patience)
	mustStore(t, s, "a/b", []byte("1"))
	mustStore(t, s, "a/c", []byte("2"))
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatalf("Delete(a/b): %v", err)
	}
	wantNotExist(t, s, "a/b")
	if got := mustLoad(t, s, "a/c"); string(got) != "2" {
		t.Errorf("Load(a/c) after deleting a/b = %q, want \"2\"", got)
	}
	for _, key := range []string{"a/b", "never/existed", "a", "a/c/below"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v, want nil", key, err)
		}
	}
	wantList(t, s, "", []string{"a/c"})
	mustStore(t, s, "a/b", []byte("3"))
	if got := mustLoad(t, s, "a/b"); string(got) != "3" {
		t.Errorf("Load(a/b) after storing it again = %q, want \"3\"", got)
	}
}

// testList checks List on nested keys, prefix boundaries, an empty prefix
// and prefixes with no keys below them.
func testList(t *testing.T, b Backend) {
	s := open(t, b)
	keys := []string{"a/b", "a/c/d", "a/c/e/f", "a/.dot", "a/x.y", "ab/x", "a.b/y", "a-z/w", "b", "c/d"}
	for _, k := range keys {
		mustStore(t, s, k, []byte(k))
	}
	wantList(t, s, "", slices.Sorted(slices.Values(keys)))
	cases := []struct {
		prefix string
		want   []string
	}{
		{"a", []string{"a/.dot", "a/b", "a/c/d", "a/c/e/f", "a/x.y"}},
		{"a/c", []string{"a/c/d", "a/c/e/f"}},
		{"a/c/e", []string{"a/c/e/f"}},
		{"ab", []string{"ab/x"}},
		{"a.b", []string{"a.b/y"}},
		{"b", nil},       // a key, not a folder
		{"a/b", nil},     // likewise
		{"a/c/d/e", nil}, // below a value
		{"zzz", nil},
		{"a/zzz", nil},
	}
	for _, c := range cases {
		if got := mustList(t, s, c.prefix); !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
	if err := s.Delete(timeout(t, patience), "a/c/e/f"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantList(t, s, "a/c", []string{"a/c/d"})
	wantList(t, s, "a/c/e", nil)
}

// testValidKeys checks that unusual but valid keys work.
func testValidKeys(t *testing.T, b Backend) {
	s := open(t, b)
	keys := []string{
		"...", "a/...", ".a/b", "-", "_", "0", "a-b_c.d/e.f",
		".well-known/acme-challenge/tok3n_-",
		strings.Repeat("abcdefghi/", 20) + "z",
	}
	for _, k := range keys {
		mustStore(t, s, k, []byte(k))
	}
	for _, k := range keys {
		if got := mustLoad(t, s, k); string(got) != k {
			t.Errorf("Load(%q) = %q", k, got)
		}
	}
	wantList(t, s, "", slices.Sorted(slices.Values(keys)))
}

// invalidKeys break the key syntax of storage.Storage.
func invalidKeys() []string {
	return []string{
		"", "/", "/a", "a/", "a//b", ".", "..", "../x", "a/../b", "a/..", "./a", "a/./b",
		"A", "a/B", "a b", "a\\b", "a\x00b", "a\nb", "a:b", "a~b", "a+b", "a*", "é", "a/\u00e9",
		strings.Repeat("abcdefgh/", 1000) + "x",
		strings.Repeat("a", 10000),
	}
}

// testInvalidKeys checks that every method rejects invalid keys, and that
// nothing was stored anywhere by trying.
func testInvalidKeys(t *testing.T, b Backend) {
	s := open(t, b)
	ctx := timeout(t, patience)
	for _, key := range invalidKeys() {
		q := key
		if len(q) > 40 {
			q = q[:40] + "..."
		}
		if v, err := s.Load(ctx, key); err == nil {
			t.Errorf("Load(%q) = %q, nil; want an error", q, v)
		}
		if err := s.Store(ctx, key, []byte("v")); err == nil {
			t.Errorf("Store(%q) = nil, want an error", q)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) = nil, want an error", q)
		}
		if key != "" {
			if keys, err := s.List(ctx, key); err == nil {
				t.Errorf("List(%q) = %q, nil; want an error", q, keys)
			}
		}
		lctx := timeout(t, patience)
		l, err := s.Lock(lctx, key)
		switch {
		case err == nil:
			t.Errorf("Lock(%q) succeeded, want an error", q)
			_ = l.Unlock(ctx)
		case errors.Is(err, context.DeadlineExceeded):
			t.Errorf("Lock(%q) waited until its context ended instead of rejecting the name", q)
		}
	}
	wantList(t, s, "", nil)
}
