package server

import (
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/tlspilot/tlspilot/internal/solvers"
)

// maxAnswerBytes bounds what is read of an answer file. A key
// authorization is the token, a dot and a 43-character thumbprint, so
// under 200 bytes; anything larger is not one.
const maxAnswerBytes = 1024

// challengeDir answers http-01 requests from files that another process
// (`tlspilot certs`, certbot's webroot, …) writes as <dir>/<token>.
//
// The directory is written by another user, so what it holds is not
// trusted: the token is checked against the ACME alphabet before it
// becomes a file name (so a request never names any other path), the
// file is opened without following a symbolic link and without waiting
// on a FIFO, must be a regular file, is read up to maxAnswerBytes, and
// is served only if it is a key authorization for that token
// ("<token>.<thumbprint>"). So the directory's writer can make serve
// disclose nothing but key authorizations, whatever it links there.
type challengeDir struct {
	dir string
	log *slog.Logger
}

func (c *challengeDir) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.URL.Path, acmeChallengePrefix)
	if !solvers.ValidToken(tok) {
		notHeld(w, r)
		return
	}
	ka, ok := c.answer(tok)
	if !ok {
		notHeld(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, ka)
}

// answer reads the key authorization of tok. A missing file is the
// common case (a token of some other process, or a guess) and is not
// logged; a file that exists but cannot be served is.
func (c *challengeDir) answer(tok string) (string, bool) {
	path := filepath.Join(c.dir, tok)
	f, err := os.OpenFile(path, os.O_RDONLY|answerOpenFlags, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		c.refuse(path, "cannot open the answer file (it must be a regular file readable by this user)", err)
		return "", false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		c.refuse(path, "the answer file is not a regular file", nil)
		return "", false
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAnswerBytes+1))
	if err != nil {
		c.refuse(path, "cannot read the answer file", err)
		return "", false
	}
	ka := strings.TrimRight(string(b), " \t\r\n")
	if len(b) > maxAnswerBytes || !isKeyAuth(tok, ka) {
		c.refuse(path, "the answer file does not hold a key authorization for its token", nil)
		return "", false
	}
	return ka, true
}

func (c *challengeDir) refuse(path, msg string, err error) {
	attrs := []any{"path", path}
	if err != nil {
		attrs = append(attrs, "error", err)
	}
	c.log.Warn("http-01 answer not served: "+msg, attrs...)
}

// isKeyAuth reports whether ka is a key authorization for tok (RFC 8555
// §8.1): the token, a dot, and a base64url account key thumbprint.
func isKeyAuth(tok, ka string) bool {
	thumb, ok := strings.CutPrefix(ka, tok+".")
	return ok && solvers.ValidToken(thumb)
}
