package tlspilot

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestTrialUnmanageDuringManage: Manage and Unmanage of the same name from
// two goroutines (the Manager's methods are safe for concurrent use) end
// as if one ran after the other: the name is served and its certificates
// scheduled, or neither. Found by a review: ManageCerts registered the
// names, then (without a lock over both) scheduled the entries, and
// Unmanage removed the names, then the entries by id; so an Unmanage in
// between left certificates ordered and renewed for a name no handshake
// was served for, and one that raced a Manage of the name again
// unscheduled the new certificate, served a temporary one for ever.
func TestTrialUnmanageDuringManage(t *testing.T) {
	t.Run("unmanage", func(t *testing.T) {
		testManageRace(t, func(m *Manager, name string) { m.Unmanage(name) })
	})
	t.Run("unmanage and manage again", func(t *testing.T) {
		testManageRace(t, func(m *Manager, name string) {
			m.Unmanage(name)
			_ = m.Manage(t.Context(), name) // refused while the other holds the name
		})
	})
}

// testManageRace manages a name again and again while another goroutine
// runs other on it, and checks after each round that the name table and
// the scheduled entries agree.
func testManageRace(t *testing.T, other func(m *Manager, name string)) {
	m, err := New(t.Context(), noCAConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	const name = "race.example.test"
	for round := range 1000 {
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() {
			for !stop.Load() {
				other(m, name)
			}
		})
		err := m.Manage(t.Context(), name)
		stop.Store(true)
		wg.Wait()
		_ = err // refused when the other goroutine held the name
		if msg := manageConsistent(m, name); msg != "" {
			t.Fatalf("round %d: %s", round, msg)
		}
		m.Unmanage(name)
	}
}

// manageConsistent returns what is wrong between the name table and the
// scheduled entries for name, "" if nothing.
func manageConsistent(m *Manager, name string) string {
	s := m.names.lookup(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	var scheduled []*entry
	for _, e := range m.entries {
		if e.site.names[0] == name {
			scheduled = append(scheduled, e)
		}
	}
	switch {
	case s == nil && len(scheduled) > 0:
		return "not managed (no handshake served) but its certificate is scheduled for orders and renewals"
	case s != nil && len(scheduled) != len(s.certs):
		return "managed (served) but its certificate is not scheduled: a temporary one is served for ever"
	}
	for _, e := range scheduled {
		if e.site != s {
			return "the certificate scheduled is not the one served"
		}
	}
	return ""
}
