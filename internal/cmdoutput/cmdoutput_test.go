package cmdoutput

import (
	"strings"
	"testing"
)

// TestTail: the last Max bytes are kept, whether they come in one write
// larger than Max or in many, and a cut is marked.
func TestTail(t *testing.T) {
	tests := []struct {
		writes []string
		want   string
	}{
		{nil, ""},
		{[]string{"abc"}, "abc"},
		{[]string{"abcdef"}, "abcdef"},
		{[]string{"abcdefgh"}, "…cdefgh"},
		{[]string{"abc", "def", "gh"}, "…cdefgh"},
		{[]string{strings.Repeat("x", 1000), "abcdef"}, "…abcdef"},
	}
	for _, tt := range tests {
		tl := &Tail{Max: 6}
		for _, w := range tt.writes {
			if n, err := tl.Write([]byte(w)); n != len(w) || err != nil {
				t.Errorf("Write(%d bytes) = %d, %v", len(w), n, err)
			}
		}
		if got := tl.String(); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.writes, got, tt.want)
		}
	}
}
