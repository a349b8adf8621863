package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestImportCertbotBesideServe: a certbot standalone lineage imported
// into a config with sites, whose serve holds the HTTP port certbot's
// standalone used, gets no standalone address (the config would hold
// two listeners on one address, which check refuses): serve answers
// http-01 for it, as a renewal with serve running shows.
func TestImportCertbotBesideServe(t *testing.T) {
	e := newEnvWith(t, testenv.PebbleOptions{NonceReject: 5}) // see runCertbot
	le := runCertbot(t, e, "mail.example.test")               // standalone on e.http, serve's http_listen below
	conf := e.config(fmt.Sprintf("\n[[site]]\nnames = [\"www.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	out, _ := importCertbot(t, 0, "--config", conf, "--apply", le)
	port := strconv.Itoa(e.p.HTTPPort)
	if !strings.Contains(out, `standalone = "127.0.0.1:`+port+`" not carried over`) {
		t.Errorf("import does not say the standalone address is left out:\n%s", out)
	}
	text := readFile(t, conf)
	if strings.Contains(text, "standalone") || !strings.Contains(text, `names = ["mail.example.test"]`) {
		t.Errorf("config after the import:\n%s", text)
	}
	if code, out, errOut := runBinary(t, "check", conf); code != 0 {
		t.Fatalf("check of the imported config: exit %d\n%s%s", code, out, errOut)
	}
	e.serve()
	e.waitIssued("www.example.test", 30*time.Second)
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf, "mail.example.test"); code != 0 {
		t.Fatalf("renew --force with serve answering http-01: exit %d\n%s%s", code, out, errOut)
	}
}

// TestImportedStandaloneRenews: a certbot standalone lineage imported
// into a file without sites, its standalone address that of http_listen
// (":80" both, on a real machine), is renewed by `tlspilot renew`: the
// command no longer binds http_listen first for answers nothing needs
// there, which left the certificate's own listener "address already in
// use".
func TestImportedStandaloneRenews(t *testing.T) {
	e := newEnvWith(t, testenv.PebbleOptions{NonceReject: 5}) // see runCertbot
	le := runCertbot(t, e, "mail.example.test")               // standalone on e.http, http_listen below
	conf := e.config("")
	importCertbot(t, 0, "--config", conf, "--apply", le)
	if text := readFile(t, conf); !strings.Contains(text, `standalone = "`+e.http+`"`) {
		t.Fatalf("config after the import lacks the standalone address %s:\n%s", e.http, text)
	}
	if code, out, errOut := runBinary(t, "renew", "--force", "--config", conf, "mail.example.test"); code != 0 {
		t.Fatalf("renew --force of the imported standalone certificate: exit %d\n%s%s", code, out, errOut)
	}
}
