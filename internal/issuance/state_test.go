package issuance

import (
	"testing"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// authz returns an authorization in state status whose challenges, one
// per type, are in the given states.
func authz(status string, chs ...[2]string) acmeclient.Authz {
	a := acmeclient.Authz{URL: "https://ca/authz/1", Status: status}
	for _, c := range chs {
		a.Challenges = append(a.Challenges, acmeclient.Challenge{Type: c[0], Status: c[1], URL: "https://ca/chal/" + c[0], Token: "tok-" + c[0]})
	}
	return a
}

func TestAuthzStep(t *testing.T) {
	const (
		pending, processing, valid, invalid = acmeclient.StatusPending, acmeclient.StatusProcessing, acmeclient.StatusValid, acmeclient.StatusInvalid
	)
	h := func(s string) [2]string { return [2]string{"http-01", s} }
	d := func(s string) [2]string { return [2]string{"dns-01", s} }
	tests := []struct {
		name string
		a    acmeclient.Authz
		want step
		ch   string // type of the challenge the step concerns, "" for none
	}{
		{"fresh", authz(pending, h(pending), d(pending)), stepAnswer, "http-01"},
		{"challenge status missing", authz(pending, h("")), stepAnswer, "http-01"},
		{"CA validating", authz(pending, h(processing), d(pending)), stepWait, "http-01"},
		{"challenge valid, authorization not yet", authz(pending, h(valid)), stepWait, "http-01"},
		{"authorization valid", authz(valid, h(valid)), stepSkip, ""},
		{"authorization valid by another type", authz(valid, h(pending), d(valid)), stepSkip, ""},
		{"CA validating another type", authz(pending, h(pending), d(processing)), stepWait, "dns-01"},
		{"challenge failed", authz(pending, h(invalid)), stepNewOrder, "http-01"},
		{"another type failed", authz(pending, h(pending), d(invalid)), stepNewOrder, "dns-01"},
		{"authorization invalid", authz(invalid, h(invalid)), stepNewOrder, ""},
		{"authorization deactivated", authz(acmeclient.StatusDeactivated, h(pending)), stepNewOrder, ""},
		{"authorization expired", authz(acmeclient.StatusExpired, h(pending)), stepNewOrder, ""},
		{"authorization revoked", authz(acmeclient.StatusRevoked, h(valid)), stepNewOrder, ""},
		{"authorization state unknown", authz("", h(pending)), stepNewOrder, ""},
		{"no challenge of our type", authz(pending, d(pending)), stepNoChallenge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ch := authzStep(tt.a, "http-01")
			if got != tt.want || ch.Type != tt.ch {
				t.Errorf("authzStep = %v on %q, want %v on %q", got, ch.Type, tt.want, tt.ch)
			}
		})
	}
}

func TestSettledAcceptedIdle(t *testing.T) {
	tests := []struct {
		authz, challenge        string
		settled, accepted, idle bool
	}{
		{acmeclient.StatusPending, acmeclient.StatusPending, false, false, true},
		{acmeclient.StatusPending, acmeclient.StatusProcessing, false, true, false},
		{acmeclient.StatusPending, acmeclient.StatusValid, true, true, false},
		{acmeclient.StatusPending, acmeclient.StatusInvalid, true, true, false},
		{acmeclient.StatusPending, "", false, true, false}, // state unknown: not known idle
		{acmeclient.StatusValid, acmeclient.StatusValid, true, true, false},
		{acmeclient.StatusValid, acmeclient.StatusPending, true, true, false}, // valid through another challenge
		{acmeclient.StatusInvalid, acmeclient.StatusInvalid, true, true, false},
		{acmeclient.StatusExpired, acmeclient.StatusPending, true, true, false},
		{"", acmeclient.StatusPending, false, false, false},
	}
	for _, tt := range tests {
		a := authz(tt.authz, [2]string{"http-01", tt.challenge})
		if got := settled(a, a.Challenges[0]); got != tt.settled {
			t.Errorf("settled(authz %q, challenge %q) = %v, want %v", tt.authz, tt.challenge, got, tt.settled)
		}
		if got := accepted(a, a.Challenges[0]); got != tt.accepted {
			t.Errorf("accepted(authz %q, challenge %q) = %v, want %v", tt.authz, tt.challenge, got, tt.accepted)
		}
		if got := idle(a, a.Challenges[0]); got != tt.idle {
			t.Errorf("idle(authz %q, challenge %q) = %v, want %v", tt.authz, tt.challenge, got, tt.idle)
		}
	}
}

func TestCanResume(t *testing.T) {
	key, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		status string
		key    bool
		want   bool
	}{
		{acmeclient.StatusPending, false, true},
		{acmeclient.StatusReady, false, true},
		{acmeclient.StatusProcessing, true, true},
		{acmeclient.StatusProcessing, false, false}, // finalized with a key we lost
		{acmeclient.StatusValid, true, true},
		{acmeclient.StatusValid, false, true}, // download says why it starts over
		{acmeclient.StatusInvalid, true, false},
		{"", false, false},
		{"unheard-of", true, false},
	}
	for _, tt := range tests {
		var p certstore.Progress
		if tt.key {
			p.Key = key
		}
		if got := canResume(acmeclient.Order{Status: tt.status}, p); got != tt.want {
			t.Errorf("canResume(order %q, key saved %v) = %v, want %v", tt.status, tt.key, got, tt.want)
		}
	}
}
