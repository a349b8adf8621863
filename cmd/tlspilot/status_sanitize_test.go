package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/oneline"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// forgedHookError is what a DNS hook printed to stderr in the trial: a
// colour sequence, a carriage return and lines that read as status's own.
const forgedHookError = "exec: hook: exit status 1: \x1b[31mred\x1b[0m\nline2\r\n  last error (x): forged\nOK: 1 valid"

// TestStatusSanitizeStoredLastError: a last error stored by a failed
// attempt (a hook's stderr) is printed by `tlspilot status` on its one
// line, its escape sequence and line breaks shown escaped, so it can
// neither drive the terminal nor forge a line such as "OK: 1 valid".
func TestStatusSanitizeStoredLastError(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "storage")
	fs, err := fsstore.New(fsstore.Options{Dir: store})
	if err != nil {
		t.Fatal(err)
	}
	id := certstore.CertID([]string{"evil.example.test"}, keys.ECDSAP256)
	st := certstore.State{Attempts: 1, LastError: forgedHookError, LastAttempt: time.Now(), RetryAt: time.Now().Add(time.Hour)}
	if err := certstore.New(fs, nil).StoreState(context.Background(), id, st); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, "storage = "+strconvQuote(store)+"\nadmin_listen = \"off\"\nca = \"https://127.0.0.1:1/dir\"\n\n[[site]]\nnames = [\"evil.example.test\"]\n")

	var out, errOut bytes.Buffer
	statusCmd(context.Background(), []string{"--config", conf}, &out, &errOut)
	text := out.String()
	if !strings.Contains(text, `\x1b[31mred\x1b[0m\nline2\r\n  last error (x): forged\nOK: 1 valid`) {
		t.Errorf("the stored last error is not shown escaped on its line:\n%s%s", text, errOut.String())
	}
	if strings.ContainsAny(text, "\x1b\r") {
		t.Errorf("status prints control characters of a stored last error:\n%q", text)
	}
	errLines := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "OK:") || strings.HasPrefix(l, "  last error (x)") {
			t.Errorf("status prints a forged line %q:\n%s", l, text)
		}
		if strings.HasPrefix(l, "  last error (") {
			errLines++
		}
	}
	if errLines != 1 {
		t.Errorf("%d last error lines, want 1:\n%s", errLines, text)
	}
}

// TestStatusSanitizeTable: every text from outside that the table
// prints (names, issuer, account problem, deploy error, an UNKNOWN
// error) keeps one certificate on one row and one line per detail.
func TestStatusSanitizeTable(t *testing.T) {
	now := time.Now()
	r := tlspilot.StatusReport{
		Status:  "WARNING",
		Account: &tlspilot.AccountStatus{CA: "https://ca.test/dir", State: "valid", Problem: "bad\nOK: 1 valid"},
		Certificates: []tlspilot.CertStatus{{
			ID: "a\x1b]0;title\x07", Names: []string{"a.test\tb", "c.test\nOK: 2 valid"}, State: tlspilot.StateFailing,
			KeyType: "ecdsa-p256", Issuer: "CA\u202eevil", Attempts: 1, LastAttempt: now, LastError: "x\x9by",
			Deploy: &tlspilot.DeployStatus{State: tlspilot.DeployFailing, LastError: "reload\r\nOK: 3 valid"},
		}},
	}
	var b bytes.Buffer
	printTable(&b, r)
	text := b.String()
	if strings.Contains(text, "\nOK:") || strings.ContainsAny(text, "\x1b\x07\r\t\u202e") || strings.IndexByte(text, 0x9b) >= 0 {
		t.Errorf("the table passes control characters or forged lines:\n%q", text)
	}
	for _, want := range []string{`a.test\tb,c.test\nOK: 2 valid`, `CA\u202eevil`, `x\x9by`, `reload\r\nOK: 3 valid`, `bad\nOK: 1 valid`, `a\x1b]0;title\a`} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
	if r.Certificates[0].LastError != "x\x9by" || r.Account.Problem != "bad\nOK: 1 valid" || r.Certificates[0].Deploy.LastError != "reload\r\nOK: 3 valid" {
		t.Error("printTable changed the caller's report")
	}

	var out, errOut bytes.Buffer
	report(&out, &errOut, false, tlspilot.UnknownReport(now, errorString("read storage: \x1b[2Jgone\nOK: 1 valid")))
	if strings.Contains(out.String()+errOut.String(), "\x1b") || strings.Contains(out.String(), "\nOK:") {
		t.Errorf("an UNKNOWN error is printed raw:\n%q\n%q", out.String(), errOut.String())
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestOneLine: control characters, line breaks, invisible format
// characters and bytes that are not UTF-8 are escaped; printable text,
// quotes and backslashes are kept; a second pass changes nothing.
func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain: \"quoted\" \\ text", "plain: \"quoted\" \\ text"},
		{"é ü 日本", "é ü 日本"},
		{"a\nb\r\nc\td", `a\nb\r\nc\td`},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"raw \x9b31m", `raw \x9b31m`},
		{"bidi \u202e\u2066", `bidi \u202e\u2066`},
		{"sep \u2028", `sep \u2028`},
		{"", ""},
	} {
		got := oneline.Escape(c.in)
		if got != c.want {
			t.Errorf("oneline.Escape(%q) = %q, want %q", c.in, got, c.want)
		}
		if again := oneline.Escape(got); again != got {
			t.Errorf("oneline.Escape twice on %q: %q", c.in, again)
		}
	}
}
