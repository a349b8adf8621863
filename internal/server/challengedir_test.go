package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChallengeDir: with Options.ChallengeDir, http-01 requests are
// answered from <dir>/<token> files that another process wrote, on both
// listeners, after the ACME hook (whose own tokens keep working). Only a
// token in the base64url alphabet becomes a file name, and only a regular
// file holding a key authorization for its token is served: anything
// else goes on to the site (404 here), without following a symbolic link
// or waiting on a FIFO.
func TestChallengeDir(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	const thumb = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
	answer := func(tok string) string { return tok + "." + thumb }
	writeFile(t, filepath.Join(dir, "fileTok_1"), answer("fileTok_1")+"\n") // a trailing newline, as `echo` writes
	writeFile(t, filepath.Join(dir, "held"), answer("held")+"-from-the-file")
	writeFile(t, filepath.Join(dir, "notKeyAuth"), "a secret that is not a key authorization")
	writeFile(t, filepath.Join(dir, "otherToken"), answer("fileTok_1"))
	writeFile(t, filepath.Join(dir, "tooLong"), answer("tooLong")+strings.Repeat("A", maxAnswerBytes))
	writeFile(t, filepath.Join(dir, "a.b"), answer("a.b"))
	writeFile(t, filepath.Join(outside, "target"), answer("linked"))
	if err := os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "linked")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newTestCert(t, "site.test")
	ts := startServer(t, Options{
		ACMEHTTP:     challengeHook(map[string]string{"held": answer("held")}),
		ChallengeDir: dir,
		Sites:        []Site{{Names: []string{"site.test"}, Default: true, Cert: c.source()}},
	}, c)
	cl := ts.caClient(t)

	for _, scheme := range []string{"http", "https"} {
		for tok, want := range map[string]string{"fileTok_1": answer("fileTok_1"), "held": answer("held")} {
			url := scheme + "://site.test" + challengePath + tok
			resp, body := do(t, cl, http.MethodGet, url)
			if resp.StatusCode != 200 || body != want || resp.Header.Get("Content-Type") != "text/plain" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s: %d %q %v, want 200 %q", url, resp.StatusCode, body, resp.Header, want)
			}
		}
	}
	for _, tok := range []string{"missing", "notKeyAuth", "otherToken", "tooLong", "linked", "fifo", "subdir", "a.b"} {
		start := time.Now()
		resp, body := do(t, cl, http.MethodGet, "http://site.test"+challengePath+tok)
		if resp.StatusCode != 404 || strings.Contains(body, thumb) {
			t.Errorf("token %q: %d %q, want 404", tok, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("token %q: answered after %v", tok, d)
		}
	}
	// Requests as sent on the wire: the path is not cleaned before the
	// token is checked, and an encoded slash is a slash.
	for _, target := range []string{
		challengePath + "..",
		challengePath + "%2e%2e",
		challengePath + "../../" + filepath.Base(outside) + "/target",
		challengePath + "..%2f..%2ftarget",
		challengePath + "subdir%2f..%2ffileTok_1",
		challengePath + "fileTok_1%00",
		challengePath,
	} {
		code, resp := rawRequest(t, ts.httpAddr, "", nil, "GET "+target+" HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
		if code != 404 || strings.Contains(resp, thumb) {
			t.Errorf("GET %s: %d %q, want 404", target, code, resp)
		}
	}
}

// TestChallengeDirMissing: a challenge directory that does not exist is
// refused by New.
func TestChallengeDirMissing(t *testing.T) {
	c := newTestCert(t, "site.test")
	_, err := New(Options{
		HTTPListener: listen(t),
		ChallengeDir: filepath.Join(t.TempDir(), "nope"),
		Sites:        []Site{{Names: []string{"site.test"}, Cert: c.source()}},
	})
	if err == nil || !strings.Contains(err.Error(), "challenge dir") {
		t.Errorf("New: %v, want a challenge dir error", err)
	}
}
