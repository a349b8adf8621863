package oneline

import "testing"

// TestEscape: what could break a line or drive a terminal is escaped,
// printable text is kept, and a second pass changes nothing.
func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, \"quotes\" and \\", "plain text, \"quotes\" and \\"},
		{"two\nlines\r\n", `two\nlines\r\n`},
		{"tab\there", `tab\there`},
		{"\x1b]0;title\a", `\x1b]0;title\a`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"C1 \u0085", `C1 \u0085`},
		{"bad \xff byte", `bad \xff byte`},
		{"été ☃", "été ☃"},
	}
	for _, tt := range tests {
		got := Escape(tt.in)
		if got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := Escape(got); again != got {
			t.Errorf("Escape twice on %q: %q", tt.in, again)
		}
	}
}
