package solvers

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestTrialCleanUpAgainWherePresented: an answer file whose removal
// failed is looked for again where it was presented when CleanUp is
// called again (the issuance flow records it as left behind and its
// Sweep retries), even if the owner's challenge directory changed in
// between. Found by a review: CleanUp forgot where Present wrote the
// file before removing it, so the retry looked in the owner's directory
// now, and a file left in the old one stayed published for ever.
func TestTrialCleanUpAgainWherePresented(t *testing.T) {
	first, later := t.TempDir(), t.TempDir()
	var mu sync.Mutex
	dir := first
	h := NewHTTP01Files(NewHTTP01(openStores(t, 1)[0], nil), func(string) string {
		mu.Lock()
		defer mu.Unlock()
		return dir
	})
	ctx := WithOwner(context.Background(), "cert-1")
	ch := httpChallenge("x.test", "tok-retried")
	if err := h.Present(ctx, ch); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	dir = later // managed again with another directory
	mu.Unlock()

	// Fault injection: the removal fails (a non-empty directory stands
	// where the answer file is), as a removal on a busy or failing file
	// system does; then the fault goes and the answer is there again.
	path := filepath.Join(first, ch.Token)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "busy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.CleanUp(ctx, ch); err == nil {
		t.Fatal("CleanUp with the answer file not removable: no error")
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(ch.KeyAuthorization), AnswerFileMode); err != nil {
		t.Fatal(err)
	}

	if err := h.CleanUp(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("answer file %s still there after CleanUp was retried (%v); want it removed where it was presented", path, err)
	}
	// Once removed, nothing of it is kept.
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.wrote) != 0 || len(h.held) != 0 {
		t.Errorf("after the answer was removed the solver still keeps %v %v", h.wrote, h.held)
	}
}
