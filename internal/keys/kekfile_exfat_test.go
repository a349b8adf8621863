package keys

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestLoadOrCreateSealerExFAT creates the KEK file on exFAT, which has no
// hard links, mounted private to its owner: one process alone and eight
// at once must each end up with the one KEK, leaving nothing else behind.
func TestLoadOrCreateSealerExFAT(t *testing.T) {
	mnt := testenv.MountExFAT(t, "077")
	path := filepath.Join(mnt, "alone", "kek")
	s1, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatalf("LoadOrCreateSealer: %v", err)
	}
	s2, err := LoadOrCreateSealer(path)
	if err != nil {
		t.Fatalf("second LoadOrCreateSealer: %v", err)
	}
	checkSameKEK(t, s1, s2)
	wantOnlyKEK(t, filepath.Dir(path))

	for round := range 5 {
		dir := filepath.Join(mnt, "race", string(rune('a'+round)))
		const n = 8
		sealers, errs := make([]*Sealer, n), make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				sealers[i], errs[i] = LoadOrCreateSealer(filepath.Join(dir, "kek"))
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d process %d: %v", round, i, err)
			}
		}
		for i := 1; i < n; i++ {
			checkSameKEK(t, sealers[0], sealers[i])
		}
		wantOnlyKEK(t, dir)
	}
}

// TestLoadOrCreateSealerRefusesNoPermissions: on exFAT mounted with its
// default umask every file has mode 0777, so a KEK created there would be
// readable by everyone. LoadOrCreateSealer refuses at once, saying so and
// naming the path, and leaves no file behind.
func TestLoadOrCreateSealerRefusesNoPermissions(t *testing.T) {
	dir := testenv.MountExFAT(t, "")
	path := filepath.Join(dir, "kek")
	s, err := LoadOrCreateSealer(path)
	if err == nil || s != nil {
		t.Fatalf("LoadOrCreateSealer on exFAT without permissions = %v, %v; want an error", s, err)
	}
	for _, want := range []string{path, "does not keep file permissions", "umask=077"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// wantOnlyKEK fails the test unless dir holds exactly one file, "kek".
func wantOnlyKEK(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "kek" {
		t.Errorf("%s holds %v, want only the KEK file", dir, entries)
	}
}
