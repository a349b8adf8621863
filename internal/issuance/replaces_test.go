package issuance

import "testing"

// TestReplacesRefused: the problems after which an order naming the
// certificate it replaces is placed again without it.
func TestReplacesRefused(t *testing.T) {
	for _, tt := range []struct {
		problem string
		want    bool
	}{
		{"alreadyReplaced", true},
		{"unauthorized", true},   // another account's certificate
		{"serverInternal", true}, // the CA could not look it up (Pebble #550)
		{"badNonce", false},
		{"rateLimited", false},
		{"malformed", false},
		{"accountDoesNotExist", false},
		{"", false},
	} {
		if got := replacesRefused(tt.problem); got != tt.want {
			t.Errorf("replacesRefused(%q) = %v, want %v", tt.problem, got, tt.want)
		}
	}
}
