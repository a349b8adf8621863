package acmeclient

import "testing"

// TestAccountNotSharedWithACME: what acmez is handed for a request is
// the account's own copy: acmez decodes the CA's answer into it, and an
// Account is used by concurrent orders (CI once saw two failing orders
// of one revoke race on the Contact slice while both asked for the
// account's state).
func TestAccountNotSharedWithACME(t *testing.T) {
	a := Account{URL: "https://ca.test/acct/1", Contact: []string{"mailto:ops@example.com"}}
	aa := a.acme()
	aa.Contact[0] = "mailto:changed@example.com"
	if a.Contact[0] != "mailto:ops@example.com" {
		t.Errorf("a request's decoding changed the shared account's contact to %q", a.Contact[0])
	}
}
