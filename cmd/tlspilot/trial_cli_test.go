package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestCleanOlderThanOutOfRange: an --older-than too large for a
// duration ("1e6d", meant as "never"), or not a number ("NaNd", "Infd"),
// is refused; as read, it wrapped round to a negative age, which clean
// takes as "0": every unmanaged certificate removed.
func TestCleanOlderThanOutOfRange(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf("agree_terms = true\nstorage = %q\n", filepath.Join(dir, "s")))
	for _, v := range []string{"1e6d", "106752d", "NaNd", "Infd", "+Infd", "-0d"} {
		code, out, errOut := runCLI(t, "clean", "-c", conf, "--older-than", v, "--dry-run")
		if v == "-0d" {
			if code != 0 {
				t.Errorf("clean --older-than %s: exit %d, stdout %q, stderr %q; want it read as 0", v, code, out, errOut)
			}
			continue
		}
		if code != 2 || !strings.Contains(errOut, "want a number of days") {
			t.Errorf("clean --older-than %s: exit %d, stdout %q, stderr %q; want 2 and a refusal", v, code, out, errOut)
		}
	}
	var d days
	if err := d.Set("106751d"); err != nil || d <= 0 {
		t.Errorf("106751d: %v, %v; want the largest whole number of days a duration holds", time.Duration(d), err)
	}
}

// TestRevokeRenewErrorsOneLine: what a CA answers (a problem's detail)
// reaches the operator's terminal through revoke's and renew's error
// lines as text, never as control characters: an escape sequence loses
// its ESC and a line break cannot start a line that reads as
// tlspilot's own ("revoked …"), as status and renew's progress lines
// print it. Failures joined (one per certificate) each keep a line of
// their own.
func TestRevokeRenewErrorsOneLine(t *testing.T) {
	e := newEnv(t)
	conf := e.config(fmt.Sprintf("[[site]]\nnames = [\"hostile.example.test\"]\nroot = %q\nkey_type = [\"ecdsa-p256\", \"rsa2048\"]\n",
		filepath.Join(e.dir, "www")))
	if code, out, errOut := runCLI(t, "renew", "-c", conf); code != 0 {
		t.Fatalf("renew: exit %d\n%s%s", code, out, errOut)
	}
	const detail = "\x1b]0;pwned\x07\x1b[2J\nrevoked hostile.example.test (unspecified)\n\u202e"
	e.p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/revoke-cert" && r.URL.Path != "/order-plz" {
			return false
		}
		testenv.WriteProblem(w, http.StatusForbidden, "unauthorized", detail, 0)
		return true
	})
	check := func(what string, code int, out, errOut string, lines int) {
		t.Helper()
		var own []string // stderr without the log's lines
		for l := range strings.Lines(errOut) {
			if !strings.HasPrefix(l, "time=") {
				own = append(own, l)
			}
		}
		if code != 1 || strings.ContainsAny(errOut, "\x1b\x07\u202e") || strings.Contains(out+errOut, "\nrevoked") ||
			len(own) != lines || !strings.Contains(errOut, `\x1b]0;pwned\a`) {
			t.Errorf("%s with a hostile CA: exit %d, stdout %q, stderr %q; want 1 and the detail escaped, %d lines", what, code, out, errOut, lines)
		}
	}
	code, out, errOut := runCLI(t, "revoke", "-c", conf, "hostile.example.test")
	check("revoke", code, out, errOut, 2) // one line per certificate (ECDSA and RSA)
	e.p.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/order-plz" {
			return false
		}
		testenv.WriteProblem(w, http.StatusForbidden, "unauthorized", detail, 0)
		return true
	})
	code, out, errOut = runCLI(t, "revoke", "-c", conf, "hostile.example.test")
	check("revoke, replacement refused", code, out, errOut, 2)
	if out != "revoked hostile.example.test (unspecified)\n" {
		t.Errorf("revoke, replacement refused: stdout %q", out)
	}
}

// TestStatusNamedBesideDamaged: `tlspilot status NAME` reports NAME's
// certificate alone, with its own grade, also when another
// certificate's record cannot be read: a Nagios check per name must not
// turn UNKNOWN for every name because one record is damaged. Before, the
// whole report was printed, UNKNOWN. And without NAMEs the text report
// lists every certificate below the reason for UNKNOWN; before, it
// printed the reason alone, hiding an expired certificate beside it.
func TestStatusNamedBesideDamaged(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlspilot.toml")
	storage := filepath.Join(dir, "storage")
	write(t, conf, "storage = "+strconvQuote(storage)+"\nadmin_listen = \"off\"\nca = \"https://127.0.0.1:1/dir\"\n\n"+
		"[[site]]\nnames = [\"fine.example.test\"]\n\n[[site]]\nnames = [\"damaged.example.test\"]\n")
	fs, err := fsstore.New(fsstore.Options{Dir: storage})
	if err != nil {
		t.Fatal(err)
	}
	id := certstore.CertID([]string{"damaged.example.test"}, tlspilot.ECDSAP256)
	if err := fs.Store(t.Context(), "certs/"+id+"/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	// As text, the other certificates are listed still (one of them may
	// have expired), below the reason for UNKNOWN.
	code, out, errOut := runCLI(t, "status", "-c", conf)
	if first, _, _ := strings.Cut(out, "\n"); code != tlspilot.ExitUnknown || !strings.HasPrefix(first, "UNKNOWN: certificate damaged.example.test-") ||
		!strings.Contains(out, "fine.example.test") || !strings.Contains(errOut, "damaged record") {
		t.Errorf("status of every certificate: exit %d, want 3 (UNKNOWN), the reason first, then every certificate\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "status", "-c", conf, "--json", "fine.example.test")
	var r tlspilot.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != tlspilot.ExitWarning || len(r.Certificates) != 1 ||
		r.Certificates[0].Names[0] != "fine.example.test" || r.Error != "" {
		t.Errorf("status fine.example.test: exit %d, %v\n%s%s; want only it, pending (WARNING)", code, err, out, errOut)
	}
	if code, out, _ := runCLI(t, "status", "-c", conf, "damaged.example.test"); code != tlspilot.ExitUnknown || !strings.Contains(out, "damaged") {
		t.Errorf("status damaged.example.test: exit %d, want 3 (UNKNOWN)\n%s", code, out)
	}
}

// TestCommandConfigErrorsOneEach: renew, revoke and clean print each
// problem of a rejected config file on a line of its own, as before
// their errors were printed through oneline.Escape.
func TestCommandConfigErrorsOneEach(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "tlspilot.toml")
	write(t, conf, "agree_terms = true\nfrobnicate = 1\nwibble = 2\n")
	for _, args := range [][]string{{"renew"}, {"revoke", "a.example.test"}, {"clean"}} {
		code, _, errOut := runCLI(t, append(args, "-c", conf)...)
		if code != 1 || strings.Count(errOut, "\n") != 2 || !strings.Contains(errOut, "frobnicate") || !strings.Contains(errOut, "wibble") {
			t.Errorf("%s with two problems in the config: exit %d, stderr %q; want 1, one line each", args[0], code, errOut)
		}
	}
}
