package main

import (
	"strings"
	"testing"
)

// TestNumericIDsStrict: a numeric user or group id given to --user and
// --group of init, or reaching the privilege drop, is written as the
// system writes it. "4294967296" is uid 0 to the C library (ids are 32
// bits), and "+0" or "00" are 0 too: each named root while looking like
// another user. The config refuses them (internal/config); these paths
// do not go through it.
func TestNumericIDsStrict(t *testing.T) {
	for _, v := range []string{"4294967296", "4294967295", "00", "+0", "-0", "0065534", "-1"} {
		if u, err := lookupUser(v); err == nil || !strings.Contains(err.Error(), "numeric id") {
			t.Errorf("lookupUser(%q) = %v, %v; want refused", v, u, err)
		}
		if g, err := lookupGroup(v); err == nil || !strings.Contains(err.Error(), "numeric id") {
			t.Errorf("lookupGroup(%q) = %v, %v; want refused", v, g, err)
		}
		if o, err := lookupCertsOwner(v, ""); err == nil {
			t.Errorf("init --user %s: owner uid %d, want refused", v, o.uid)
		}
		if o, err := lookupCertsOwner("65534", v); err == nil {
			t.Errorf("init --group %s: owner gid %d, want refused", v, o.gid)
		}
		if err := dropPrivileges(v, ""); err == nil {
			t.Errorf("dropPrivileges(%q) succeeded, want refused", v)
		}
	}
	if u, err := lookupUser("0"); err != nil || u.Uid != "0" {
		t.Errorf("lookupUser(0) = %v, %v; want root", u, err)
	}
	if o, err := lookupCertsOwner("4000000", "4000001"); err != nil || o.uid != 4000000 || o.gid != 4000001 {
		t.Errorf("init with ids no database lists: %+v, %v; want them taken as written", o, err)
	}
}
