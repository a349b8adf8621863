package storagetest

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"github.com/tlspilot/tlspilot/storage"
)

// testLoadMany checks, for a backend that implements storage.BatchLoader,
// that LoadMany returns exactly the stored values of the keys asked
// (through another handle too), leaves missing keys and folders out, and
// refuses an invalid key. Other backends skip it.
func testLoadMany(t *testing.T, b Backend) {
	s, other := open(t, b), open(t, b)
	if _, ok := s.(storage.BatchLoader); !ok {
		t.Skip("backend does not implement storage.BatchLoader")
	}
	want := map[string][]byte{
		"certs/a/cert.json":  []byte(`{"a":1}`),
		"certs/a/state.json": {},
		"certs/b/cert.json":  bytes.Repeat([]byte{0, 1, 2, 255}, 1000),
	}
	for k, v := range want {
		mustStore(t, s, k, v)
	}
	mustStore(t, s, "certs/c/cert.json", []byte("not asked"))
	asked := append(slices.Collect(maps.Keys(want)), "certs/b/state.json", "certs/a", "missing")
	for _, h := range []storage.Storage{s, other} {
		got, err := h.(storage.BatchLoader).LoadMany(timeout(t, patience), asked)
		if err != nil {
			t.Fatalf("LoadMany: %v", err)
		}
		if !maps.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("LoadMany(%q) returned keys %q, want %q", asked, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
		if v := got["certs/a/state.json"]; v == nil {
			t.Errorf("LoadMany returned nil for an empty value")
		}
	}
	none, err := s.(storage.BatchLoader).LoadMany(timeout(t, patience), nil)
	if err != nil || len(none) != 0 {
		t.Errorf("LoadMany(nil) = %v, %v; want an empty map", none, err)
	}
	for _, bad := range invalidKeys() {
		if _, err := s.(storage.BatchLoader).LoadMany(timeout(t, patience), []string{"certs/a/cert.json", bad}); err == nil {
			t.Errorf("LoadMany with invalid key %q: no error", bad)
		}
	}
}
