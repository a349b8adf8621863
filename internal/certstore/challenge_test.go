package certstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestChallengeFoldersPruned: once a challenge's last answer is deleted,
// its folder goes too; every challenge has a new token, so each left a
// folder for ever (106 after 30 certificates), and the answer listing
// slowed down as they piled up. Another owner's answer keeps the folder.
func TestChallengeFoldersPruned(t *testing.T) {
	dir := t.TempDir()
	fs, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st := certstore.New(fs, nil)
	ctx := context.Background()
	for _, tok := range []string{"tok1", "tok2"} {
		if err := st.StoreHTTP01(ctx, tok, "owner-a", tok+".ka"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.StoreHTTP01(ctx, "tok2", "owner-b", "tok2.ka"); err != nil {
		t.Fatal(err)
	}
	if err := st.StoreTLSALPN01(ctx, "a.test", "owner-a", "ka"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"tok1", "tok2"} {
		if err := st.DeleteHTTP01(ctx, tok, "owner-a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteTLSALPN01(ctx, "a.test", "owner-a", "ka"); err != nil {
		t.Fatal(err)
	}
	count := func(kind string) int {
		es, err := os.ReadDir(filepath.Join(dir, "data", "challenges", kind))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return len(es)
	}
	if n := count("http-01"); n != 1 {
		t.Errorf("%d http-01 token folders left, want 1 (tok2's, owner-b's answer still in it)", n)
	}
	if n := count("tls-alpn-01"); n != 0 {
		t.Errorf("%d tls-alpn-01 folders left, want 0", n)
	}
	if ka, err := st.LoadHTTP01(ctx, "tok2"); err != nil || ka != "tok2.ka" {
		t.Errorf("owner-b's answer after owner-a's clean-up: %q, %v", ka, err)
	}
}

// TestPruneChallengeFolders: empty folders of challenge answers left by
// an older version (which did not prune them) are removed by
// PruneChallengeFolders, and a folder holding an answer stays (found by
// an upgrade trial: clean said "nothing to remove" and they stayed).
func TestPruneChallengeFolders(t *testing.T) {
	dir := t.TempDir()
	fs, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st := certstore.New(fs, nil)
	ctx := context.Background()
	for _, sub := range []string{"http-01/aaa", "http-01/bbb", "tls-alpn-01/ccc"} {
		if err := os.MkdirAll(filepath.Join(dir, "data", "challenges", sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.StoreHTTP01(ctx, "kept", "owner", "kept.ka"); err != nil {
		t.Fatal(err)
	}
	n, err := st.PruneChallengeFolders(ctx)
	if err != nil || n != 3 {
		t.Errorf("PruneChallengeFolders: %d, %v; want 3 folders", n, err)
	}
	if ka, err := st.LoadHTTP01(ctx, "kept"); err != nil || ka != "kept.ka" {
		t.Errorf("the stored answer after pruning: %q, %v", ka, err)
	}
	es, _ := os.ReadDir(filepath.Join(dir, "data", "challenges", "http-01"))
	if len(es) != 1 {
		t.Errorf("%d http-01 folders left, want 1 (the stored answer's)", len(es))
	}
}
