package tlspilot

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestNoteRevoked: a certificate in service reported revoked by someone
// else (OCSP stapling's responder) is revoked for the Manager: event,
// state recorded in storage, and a replacement obtained at once; a
// certificate the Manager does not serve is not its business.
func TestNoteRevoked(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	m := startManager(t, p, cfg)
	const name = "stapled.example.test"
	if err := m.Manage(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	leaf := handshake(t, m, name, nil)[0]

	other := &x509.Certificate{Raw: []byte("not served here")}
	if ok, err := m.NoteRevoked(context.Background(), other, time.Now()); ok || err != nil {
		t.Errorf("NoteRevoked of a certificate not served: %v, %v", ok, err)
	}
	ok, err := m.NoteRevoked(context.Background(), leaf, time.Now().Add(-time.Minute))
	if !ok || err != nil {
		t.Fatalf("NoteRevoked: %v, %v", ok, err)
	}
	if ok, err := m.NoteRevoked(context.Background(), leaf, time.Now()); !ok || err != nil {
		t.Errorf("NoteRevoked again: %v, %v", ok, err)
	}
	if n := len(ev.of(EventRevoked)); n != 1 {
		t.Errorf("%d revoked events, want 1", n)
	}
	waitEvent(t, ev, EventRenewed, 1, 30*time.Second)
	now := handshake(t, m, name, nil)[0]
	if now.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("the revoked certificate is still served after the replacement")
	}
	if st := m.Status()[0]; st.State == StateRevoked || !st.RevokedAt.IsZero() {
		t.Errorf("after the replacement: state %s, revoked at %v", st.State, st.RevokedAt)
	}
}
