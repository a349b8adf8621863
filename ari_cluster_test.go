package tlspilot

import (
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestARIAnswerSharedByNodes runs two Managers on one storage, as two
// nodes of a cluster, serving one certificate. When node A asks the CA
// for the certificate's renewal information (here: the check after a
// restart, RFC 9773 §4.2) and stores the answer, node B takes that answer
// up from the storage and schedules its next check from it: B does not
// ask the CA about that certificate before the stored ARICheckAfter.
func TestARIAnswerSharedByNodes(t *testing.T) {
	const name = "ari-shared.example.test"
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfgA, cfgB := testConfig(t, p, &events{}), testConfig(t, p, &events{})
	cfgB.StorageDir = cfgA.StorageDir
	cfgA.StoragePoll, cfgB.StoragePoll = 100*time.Millisecond, 100*time.Millisecond
	r := newRestartable(t, p, cfgA)
	a := r.start(name)
	b := startManager2(t, p, cfgB)
	if err := b.Manage(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	waitServing(t, a, time.Minute)
	waitServing(t, b, time.Minute)
	id := a.Status()[0].ID
	c, err := a.store.LoadCert(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	stored := func() certstore.State {
		st, err := a.store.LoadState(t.Context(), id)
		if err != nil && !certstore.IsNotExist(err) {
			t.Fatal(err)
		}
		return st
	}
	waitUntil(t, "both nodes and the storage hold renewal information for the certificate", func() bool {
		return stored().ARIFor == c.ARIID && entryOf(t, a, id).snapshot().state.ARIFor == c.ARIID &&
			entryOf(t, b, id).snapshot().state.ARIFor == c.ARIID
	})
	before := stored()
	n0 := p.RequestsTo(ariPath)

	a = r.start(name) // asks the CA once after the start, and stores the answer
	var answer certstore.State
	waitUntil(t, "the restarted node A stores a new answer", func() bool {
		answer = stored()
		return answer.ARICheckAfter.After(before.ARICheckAfter)
	})
	eb := entryOf(t, b, id)
	waitUntil(t, "node B takes up the answer node A stored", func() bool {
		return !eb.snapshot().state.ARICheckAfter.Before(answer.ARICheckAfter)
	})
	if n := p.RequestsTo(ariPath) - n0; n != 1 {
		t.Errorf("%d renewal information requests after A's restart, want 1 (A's check after its start)", n)
	}
	eb.mu.Lock()
	next, ok := eb.ariDueLocked(time.Now())
	eb.mu.Unlock()
	if !ok || next.Before(answer.ARICheckAfter) {
		t.Errorf("node B asks the CA next at %v, before the stored answer's check time %v", next, answer.ARICheckAfter)
	}
	if got := a.Status()[0].ID; got != id {
		t.Fatalf("restarted A manages %s, want %s", got, id)
	}
}

// entryOf returns m's entry with the given id.
func entryOf(t *testing.T, m *Manager, id string) *entry {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[id]
	if e == nil {
		t.Fatalf("no entry %s", id)
	}
	return e
}

// waitUntil polls cond every 20 ms until it holds, for at most 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
