package solvers

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestTrialCleanUpWherePresented: an answer is cleaned up where it was
// presented, even when the owner's challenge directory or standalone
// address changed in between. Found by a review: a certificate unmanaged
// and managed again (a config reload) while its order was being
// validated, with another challenge directory or standalone address or
// none (the Manager now drops the old ones), had CleanUp look them up
// again: the answer file stayed in the old directory for ever, and the
// listener on the old address stayed open, holding the port.
func TestTrialCleanUpWherePresented(t *testing.T) {
	t.Run("challenge directory", func(t *testing.T) {
		for _, later := range []string{"", t.TempDir()} {
			first := t.TempDir()
			var mu sync.Mutex
			dir := first
			h := NewHTTP01Files(NewHTTP01(openStores(t, 1)[0], nil), func(string) string {
				mu.Lock()
				defer mu.Unlock()
				return dir
			})
			ctx := WithOwner(context.Background(), "cert-1")
			ch := httpChallenge("x.test", "tok-moved")
			if err := h.Present(ctx, ch); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			dir = later // managed again with another directory, or none
			mu.Unlock()
			if err := h.CleanUp(ctx, ch); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(first, ch.Token)); !os.IsNotExist(err) {
				t.Errorf("directory changed to %q: the answer file in the first one is still there after CleanUp (%v)", later, err)
			}
		}
	})
	t.Run("presented again in another directory", func(t *testing.T) {
		var mu sync.Mutex
		dirs := []string{t.TempDir(), t.TempDir()}
		dir := dirs[0]
		h := NewHTTP01Files(NewHTTP01(openStores(t, 1)[0], nil), func(string) string {
			mu.Lock()
			defer mu.Unlock()
			return dir
		})
		ctx := WithOwner(context.Background(), "cert-1")
		ch := httpChallenge("x.test", "tok-twice")
		for _, d := range dirs {
			mu.Lock()
			dir = d
			mu.Unlock()
			if err := h.Present(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.CleanUp(ctx, ch); err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, ch.Token)); !os.IsNotExist(err) {
				t.Errorf("answer file in %s still there after CleanUp (%v)", d, err)
			}
		}
	})
	t.Run("standalone address", func(t *testing.T) {
		for _, later := range []string{"", "127.0.0.1:1"} {
			var mu sync.Mutex
			addr := "127.0.0.1:0"
			open := 0
			serve := func(l net.Listener) func() {
				mu.Lock()
				open++
				mu.Unlock()
				return func() {
					_ = l.Close()
					mu.Lock()
					open--
					mu.Unlock()
				}
			}
			s := NewStandalone(NewHTTP01(openStores(t, 1)[0], nil), func(string) string {
				mu.Lock()
				defer mu.Unlock()
				return addr
			}, serve)
			ctx := WithOwner(context.Background(), "cert-1")
			ch := httpChallenge("x.test", "tok-moved")
			if err := s.Present(ctx, ch); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			addr = later // managed again with another address, or none
			mu.Unlock()
			if err := s.CleanUp(ctx, ch); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			n := open
			mu.Unlock()
			if n != 0 {
				t.Errorf("address changed to %q: %d listener(s) still open after the last CleanUp", later, n)
			}
		}
	})
}
