package tlspilot

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
)

// TestAdoptARI: a node takes up a renewal information answer another
// node stored only for the certificate in service and only when it is
// newer than its own; a taken-up answer replaces the check after the
// start and is asked again ariPeerGrace after its ARICheckAfter.
func TestAdoptARI(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	own := certstore.State{ARIFor: "id1", ARIStart: t0.Add(48 * time.Hour), ARIEnd: t0.Add(72 * time.Hour),
		ARICheckAfter: t0.Add(6 * time.Hour), ARICheckedAt: t0}
	newer := certstore.State{ARIFor: "id1", ARIStart: t0.Add(24 * time.Hour), ARIEnd: t0.Add(30 * time.Hour),
		ARICheckAfter: t0.Add(7 * time.Hour), ARICheckedAt: t0.Add(time.Hour),
		RenewAt: t0.Add(25 * time.Hour), RenewFor: "key of newer"}
	older := newer
	older.ARICheckedAt = t0.Add(-time.Hour)
	other := newer
	other.ARIFor = "id0"
	for _, tc := range []struct {
		name   string
		held   certstore.State
		stored certstore.State
		want   bool
	}{
		{"newer answer", own, newer, true},
		{"older answer", own, older, false},
		{"the same answer", own, own, false},
		{"answer for another certificate", own, other, false},
		{"none held for this certificate", certstore.State{ARIFor: "id0"}, older, true},
		{"none stored", own, certstore.State{}, false},
		{"stored before ARICheckedAt was kept", own, certstore.State{ARIFor: "id1", ARICheckAfter: t0.Add(9 * time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &entry{id: "c", meta: certMeta{ariID: "id1"}, state: tc.held, ariAfterStart: t0.Add(time.Second)}
			e.cur.Store(&tls.Certificate{})
			if got := e.adoptARI(tc.stored); got != tc.want {
				t.Fatalf("adoptARI = %v, want %v", got, tc.want)
			}
			want := tc.held
			if tc.want {
				want.ARIFor, want.ARIStart, want.ARIEnd = tc.stored.ARIFor, tc.stored.ARIStart, tc.stored.ARIEnd
				want.ARICheckAfter, want.ARICheckedAt = tc.stored.ARICheckAfter, tc.stored.ARICheckedAt
				want.RenewAt, want.RenewFor = tc.stored.RenewAt, tc.stored.RenewFor
			}
			if e.state != want {
				t.Errorf("state = %+v, want %+v", e.state, want)
			}
			at, _ := e.ariDueLocked(t0)
			wantAt := t0.Add(time.Second) // the check after the start
			if tc.want {
				wantAt = tc.stored.ARICheckAfter.Add(ariPeerGrace)
			}
			if !at.Equal(wantAt) {
				t.Errorf("next check at %v, want %v", at, wantAt)
			}
		})
	}
}
