package config

import (
	"strings"
	"testing"
)

func TestOCSPStapling(t *testing.T) {
	f := newFixture(t)
	c := f.mustParse(t, `[[site]]
names = ["a.example"]

[[site]]
names = ["b.example"]
ocsp_stapling = false

[[site]]
names = ["c.example"]
ocsp_stapling = true
`)
	for i, want := range []bool{false, true, false} {
		if got := c.Sites[i].NoOCSPStapling; got != want {
			t.Errorf("site %d: NoOCSPStapling = %v, want %v", i+1, got, want)
		}
	}
	_, err := f.parse(t, "[[site]]\nnames = [\"a.example\"]\nocsp_stapling = \"no\"\n")
	if err == nil || !strings.Contains(err.Error(), "ocsp_stapling") {
		t.Errorf("ocsp_stapling = \"no\": %v, want an error naming the key", err)
	}
}
