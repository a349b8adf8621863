package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// TestTrialTemporaryCertRenewed: a site whose certificate files stay
// missing, or appear but do not load, is served a temporary certificate
// valid now, however long that lasts. Found by a trial: the one made at
// start (valid 7 days) was served for ever, expired after a week.
func TestTrialTemporaryCertRenewed(t *testing.T) {
	t.Run("missing", func(t *testing.T) { testTemporaryCertRenewed(t, false) })
	t.Run("not loading", func(t *testing.T) { testTemporaryCertRenewed(t, true) })
}

func testTemporaryCertRenewed(t *testing.T, bad bool) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		fc, waiting, err := newFileCert(filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem"), []string{"late.test"}, nil)
		if err != nil || !waiting {
			t.Fatalf("newFileCert = %v, waiting %v; want a temporary certificate", err, waiting)
		}
		if bad { // a certificate and a key that are no PEM at all
			for _, f := range []string{"fullchain.pem", "privkey.pem"} {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("not PEM\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		log := slog.New(slog.DiscardHandler)
		for day := range 30 {
			fc.check(log) // the watcher, every CertCheckInterval
			leaf := fc.current().Leaf
			if now := time.Now(); now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
				t.Fatalf("day %d: temporary certificate valid %s to %s, served at %s", day, leaf.NotBefore, leaf.NotAfter, now)
			}
			time.Sleep(24 * time.Hour)
		}
	})
}
