package tlspilot

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestRunTwice: a second Run of a Manager while the first is under way
// returns ErrRunning at once, starting no second scheduler; once the
// first has returned, Run may be called again.
func TestRunTwice(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	m, err := New(t.Context(), testConfig(t, p, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { first <- m.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // the first Run under way
	second := make(chan error, 1)
	go func() { second <- m.Run(t.Context()) }()
	select {
	case err := <-second:
		if !errors.Is(err, ErrRunning) {
			t.Errorf("second Run: %v, want ErrRunning", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Run did not return while the first runs")
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first Run: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after the first returned: %v, want context.Canceled", err)
	}
}
