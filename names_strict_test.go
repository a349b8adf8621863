package tlspilot

import (
	"errors"
	"strings"
	"testing"
)

// TestNormalizeNameStrict: names a CA refuses are refused here, saying
// why. Found by a user's trial: "a.test.." kept a trailing dot, names
// with an all-numeric last label were taken for DNS names, and an
// overlong name was reported as one invalid label.
func TestNormalizeNameStrict(t *testing.T) {
	long := strings.Repeat("abcdefghi.", 26) + "com" // 263 characters
	cases := []struct {
		in, want string
		errHas   []string
	}{
		{"a.test..", "", []string{"empty label"}},
		{"a.test...", "", []string{"empty label"}},
		{"*.a.test..", "", []string{"empty label"}},
		{".a.test", "", []string{"empty label"}},
		{"1.2.3", "", []string{"all digits"}},
		{"01.2.3.4", "", []string{"all digits"}},
		{"a.123", "", []string{"all digits"}},
		{"*.example.42", "", []string{"all digits"}},
		{long, "", []string{"too long", "263 characters", "253"}},
		{"bücher" + long, "", []string{"too long", "253"}},
		{strings.Repeat("a", 64) + ".example.com", "", []string{"too long", "63"}},
		{"*." + strings.Repeat("abcdefghi.", 25) + "com", "", []string{"too long", "255 characters", "253"}},
		// Still accepted.
		{"a.test.", "a.test", nil},
		{"1.2.3.4", "1.2.3.4", nil},
		{"[::1]", "::1", nil},
		{"a.b1", "a.b1", nil},
		{"123.example.com", "123.example.com", nil},
		{strings.Repeat("abcdefghi.", 24) + "abcdefghi", strings.Repeat("abcdefghi.", 24) + "abcdefghi", nil}, // 249
	}
	for _, tc := range cases {
		got, err := NormalizeName(tc.in)
		if tc.errHas == nil {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrBadName) || strings.Contains(err.Error(), "idna:") {
			t.Errorf("NormalizeName(%q) = %q, %v; want an ErrBadName error of its own", tc.in, got, err)
			continue
		}
		for _, s := range tc.errHas {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("NormalizeName(%q): %v; want it to mention %q", tc.in, err, s)
			}
		}
	}
}
