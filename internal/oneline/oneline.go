// Package oneline makes text from outside (a CA's problem detail, an
// issuer's answer, a record read from storage) safe to print as part of
// one line of a terminal or a log.
package oneline

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape returns s with line breaks, tabs and every other control
// character (C0, DEL and C1, so an escape sequence loses its ESC),
// invisible characters such as bidirectional overrides, and bytes that
// are not UTF-8 written as Go escapes (`\n`, `\x1b`, `\u202e`, `\xff`),
// as log/slog's text output writes them. Printable text, quotes and
// backslashes are kept as they are, so an ordinary message reads the
// same; a second pass changes nothing.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case strconv.IsPrint(r):
			b.WriteString(s[:n])
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[n:]
	}
	return b.String()
}

// needsEscape reports whether s holds anything but printable ASCII.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return true
		}
	}
	return false
}
