package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// told waits up to d for a value on ch and reports whether one came.
func told(ch <-chan struct{}, d time.Duration) bool {
	select {
	case _, ok := <-ch:
		return ok
	case <-time.After(d):
		return false
	}
}

// TestPostgresWatch: a Store watching a key is told within a second when
// another Store (another node) stores or deletes it, not when another
// key changes, and its channel is closed when its context ends.
func TestPostgresWatch(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.NewDatabase(t)
	a, b := open(t, url, time.Minute, true), open(t, url, time.Minute, true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := a.Watch(ctx, "changes.json")
	if !told(ch, 10*time.Second) {
		t.Fatal("no value once the listening connection is up")
	}
	if err := b.Store(t.Context(), "certs/other/cert.json", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if told(ch, 300*time.Millisecond) {
		t.Error("told about another key")
	}
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"store", func() error { return b.Store(t.Context(), "changes.json", []byte("1")) }},
		{"store again", func() error { return b.Store(t.Context(), "changes.json", []byte("2")) }},
		{"delete", func() error { return b.Delete(t.Context(), "changes.json") }},
	} {
		start := time.Now()
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if !told(ch, time.Second) {
			t.Fatalf("%s by another Store: not told within a second", op.name)
		}
		t.Logf("%s: told after %v", op.name, time.Since(start).Round(time.Microsecond))
	}
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			if _, ok = <-ch; ok {
				t.Error("channel still open after its context ended")
			}
		}
	case <-time.After(5 * time.Second):
		t.Error("channel not closed after its context ended")
	}
}

// TestPostgresWatchReconnects: when the database stops, a watcher is told
// (its user finds the database unreachable), and again while the store
// tries to reconnect; when the database is back on the same port, the
// watcher is told without anyone storing anything, and later changes
// reach it as before.
func TestPostgresWatchReconnects(t *testing.T) {
	pg := testenv.StartPostgres(t)
	a := open(t, pg.URL, time.Minute, true)
	ch := a.Watch(t.Context(), "changes.json")
	if !told(ch, 10*time.Second) {
		t.Fatal("no value once the listening connection is up")
	}
	pg.Stop()
	if !told(ch, 5*time.Second) {
		t.Fatal("not told that the listening connection was lost")
	}
	if !told(ch, 2*time.Second) {
		t.Fatal("not told again while reconnecting")
	}
	pg.Start(t)
	start := time.Now()
	if !told(ch, 10*time.Second) {
		t.Fatal("not told when the database came back")
	}
	t.Logf("told %v after the database came back", time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Until(start.Add(7 * time.Second))) // past the longest backoff: reconnected
	drain(ch)
	b := open(t, pg.URL, time.Minute, true)
	if err := b.Store(t.Context(), "changes.json", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if !told(ch, time.Second) {
		t.Fatal("a change after the reconnection: not told within a second")
	}
}

// drain empties ch without waiting.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
