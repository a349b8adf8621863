package main

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/dns01"
	"github.com/vbauerster/mpb/v8"
)

// TestProgressNoDeadlock: the live progress display (renew on a
// terminal) ends while mpb renders, every time. Its decorator took the
// lock that step and wait hold while they call into a bar, which waits
// for a render under way: a renew hung for ever, once in a CI run of
// TestRenewAndRevokeWhileServing. mpb renders 50 lines every
// millisecond here while steps come, so the race comes often.
func TestProgressNoDeadlock(t *testing.T) {
	for round := range 20 {
		pr := &progress{out: io.Discard, dns: func() dns01.Waiting { return dns01.Waiting{} },
			bar: make(map[string]*progressLine), last: make(map[string]string),
			p: mpb.New(mpb.WithOutput(io.Discard), mpb.WithWidth(120), mpb.WithRefreshRate(time.Millisecond), mpb.WithAutoRefresh())}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, s := range []string{tlspilot.StepContacting, "ordering", "validating", tlspilot.StepDone} {
				for i := range 50 {
					pr.step(fmt.Sprintf("c%d", i), s)
					time.Sleep(50 * time.Microsecond)
				}
			}
			pr.step("c50", "ordering") // one left unfinished: wait aborts it
			pr.wait()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the progress display did not end within 10 s (deadlock)", round)
		}
	}
}
