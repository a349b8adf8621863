package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// waitEither waits until a or b occurs n times in out, together.
func waitEither(t *testing.T, out *syncBuffer, a, b string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), a)+strings.Count(out.String(), b) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q or %q not seen %d times", a, b, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTrialReloadEmptyFileRefused: a SIGHUP that reads the config while
// an editor saves it in place (truncated, nothing written yet), or after
// it was emptied by mistake, is refused: before, an empty file was a
// valid config with no site and default listeners, so every site stopped
// being served. A file of comments only is as empty.
func TestTrialReloadEmptyFileRefused(t *testing.T) {
	e := newEnv(t)
	site := fmt.Sprintf("[[site]]\nnames = [\"a.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www"))
	e.config(site)
	good := readFile(t, e.conf)
	cmd, out := e.serveLogged()
	e.waitIssued("a.example.test", 60*time.Second)
	for i, empty := range []string{"", "\n  \n", "# being edited\n\n"} {
		write(t, e.conf, empty)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitEither(t, out, "config reloaded", "reload refused", i+1)
		if strings.Contains(out.String(), "config reloaded") {
			t.Fatalf("an empty config file (%q) was applied", empty)
		}
		e.waitIssued("a.example.test", 5*time.Second)
	}
	if !strings.Contains(out.String(), "is empty") {
		t.Errorf("the refusal does not say the file is empty:\n%s", out.String())
	}
	// The file written again is taken.
	write(t, e.conf, good)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, "config reloaded", 1)
}

// TestTrialRestartOnlyManagerKeys: every top-level key the Manager (or
// its account) is made from at start is named when a reload changes it,
// as SIGHUP does not apply it: profile, eab_key_id, eab_hmac_file,
// keep_deactivated_account and agree_terms were changed silently, though
// docs/config.md said SIGHUP reloads every key not marked "Restart only".
func TestTrialRestartOnlyManagerKeys(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "eab1"), "c2VjcmV0LWtleS1vbmU\n")
	write(t, filepath.Join(dir, "eab2"), "c2VjcmV0LWtleS10d28\n")
	parse := func(text string) *config.Config {
		t.Helper()
		cfg, err := config.Parse(filepath.Join(dir, "tlspilot.toml"), []byte("ca = \"https://acme.example.test/dir\"\n"+text))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	base := parse("agree_terms = true\neab_key_id = \"kid1\"\neab_hmac_file = \"eab1\"\n")
	tests := []struct {
		text string
		want string
	}{
		{"agree_terms = true\neab_key_id = \"kid1\"\neab_hmac_file = \"eab1\"\nprofile = \"shortlived\"\n", "profile"},
		{"agree_terms = true\neab_key_id = \"kid2\"\neab_hmac_file = \"eab1\"\n", "eab_key_id"},
		{"agree_terms = true\neab_key_id = \"kid1\"\neab_hmac_file = \"eab2\"\n", "eab_hmac_file"},
		{"agree_terms = true\neab_key_id = \"kid1\"\neab_hmac_file = \"eab1\"\nkeep_deactivated_account = true\n", "keep_deactivated_account"},
		{"agree_terms = false\neab_key_id = \"kid1\"\neab_hmac_file = \"eab1\"\n", "agree_terms"},
	}
	for _, tt := range tests {
		if got := restartOnly(base, parse(tt.text)); !slices.Contains(got, tt.want) {
			t.Errorf("%s changed: restart-only warning names %q", tt.want, got)
		}
	}
}

// TestTrialRestartOnlyDocumented: each key a reload names as changing
// only on restart is marked "Restart only." in its row of
// docs/config.md, and each top-level key marked so there is one a
// reload names: warn_window and the notify_* keys were warned about but
// documented as reloaded.
func TestTrialRestartOnlyDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // key -> row, for top-level tables before [[site]]
	top, _, _ := strings.Cut(string(doc), "\n## `[[site]]`")
	top, _, _ = strings.Cut(top, "\n## Fleet issuer")
	for _, l := range strings.Split(top, "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		keys, _, _ := strings.Cut(l[2:], " |")
		for _, k := range strings.Split(keys, ", ") {
			k, _, _ = strings.Cut(strings.TrimPrefix(k, "`"), "`")
			rows[k] = l
		}
	}
	named := restartOnlyKeys()
	slices.Sort(named)
	named = slices.Compact(named)
	for _, k := range named {
		if k == "dns" {
			continue // the [dns] section: TestDNSRestartOnlyDocumented
		}
		row, ok := rows[k]
		if !ok {
			t.Errorf("%s: no row in docs/config.md", k)
			continue
		}
		if !strings.Contains(row, "Restart only.") {
			t.Errorf("%s: a reload warns that it changes only on restart, but its row does not say \"Restart only.\"", k)
		}
	}
	for k, row := range rows {
		if strings.Contains(row, "Restart only.") && !slices.Contains(named, k) && k != "certs_admin_listen" {
			t.Errorf("%s: documented \"Restart only.\" but a reload that changes it says nothing", k)
		}
	}
}

// restartOnlyKeys lists every key restartOnly can name, by changing each
// setting it compares.
func restartOnlyKeys() []string {
	a := &config.Config{}
	b := &config.Config{
		CA: "x", CARoots: []string{"x"}, Email: "x", Storage: "x", KEKFile: "x",
		HTTPListen: "x", HTTPSListen: "x", User: "x", Group: "x", ChallengeDir: "x",
		AccessLog: "x", LogLevel: "x", LogFormat: "x", LogFile: "x", AdminListen: "x",
		AdminAllowRemote: true, AdminHosts: []string{"x"}, DNS: &config.DNS{Provider: "x"},
		MaxConnections: 1, Profile: "x", EABKeyID: "x", EABHMACFile: "x",
		KeepDeactivatedAccount: true, AgreeTerms: true,
		Notify: &config.Notify{Command: []string{"x"}, Webhook: "x", WebhookSecretFile: "x"},
	}
	b.WarnWindow.Duration = time.Hour
	out := restartOnly(a, b)
	a.Notify = &config.Notify{}
	b.Notify.Timeout = time.Second
	return append(out, restartOnly(a, b)...)
}

// TestTrialReloadAddedNameKeepsServing: a reload that adds a name to a
// site (a new certificate for the larger set of names, which the CA is
// still validating) keeps serving the site's other names with the
// certificate they had, not a temporary self-signed one: before, the
// site was broken for every client until the new order succeeded, and
// for good if it kept failing (a name whose DNS is not set up yet).
func TestTrialReloadAddedNameKeepsServing(t *testing.T) {
	e := newEnv(t)
	gate := e.p.GateHTTP01(t) // holds the http-01 validations of the new order
	e.http = "127.0.0.1:" + strconv.Itoa(gate.BackendPort)
	www := filepath.Join(e.dir, "www")
	site := func(names, challenge string) string {
		return fmt.Sprintf("[[site]]\nnames = [%s]\nroot = %q\nchallenge = %q\n", names, www, challenge)
	}
	e.config(site(`"a.example.test"`, "tls-alpn-01"))
	cmd, out := e.serveLogged()
	e.waitIssued("a.example.test", 60*time.Second)
	e.config(site(`"a.example.test", "b.example.test"`, "http-01"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, "config reloaded", 1)
	select {
	case <-gate.Held():
	case <-time.After(60 * time.Second):
		t.Fatal("the order of the new names never reached validation")
	}
	e.waitIssued("a.example.test", 5*time.Second)
	gate.Open()
	e.waitIssued("b.example.test", 60*time.Second)
	e.waitIssued("a.example.test", 5*time.Second)
}

// TestTrialReloadMadeManagerKeys: a serve started with cert_file sites
// only makes its Manager at the first reload that adds a site without
// cert_file, from that reload's config: its ACME keys (here email) are
// then in effect, so that reload does not warn that they change only on
// restart, and a later reload that changes them again does. Before, both
// were compared with the config serve started with: the warning named
// a key that had been applied, and said nothing of one that was not.
func TestTrialReloadMadeManagerKeys(t *testing.T) {
	e := newEnv(t)
	ca := testenv.NewOpenSSLCA(t, testenv.OpenSSLCAOptions{Name: "files"})
	f := ca.Issue(testenv.IssueOptions{CommonName: "f.example.test", DNSNames: []string{"f.example.test"}})
	www := filepath.Join(e.dir, "www")
	files := fmt.Sprintf("[[site]]\nnames = [\"f.example.test\"]\nroot = %q\ncert_file = %q\nkey_file = %q\n", www, f.ChainFile, f.KeyFile)
	acme := fmt.Sprintf("[[site]]\nnames = [\"a.example.test\"]\nroot = %q\n", www)
	withEmail := func(sites, email string) {
		e.config(sites)
		write(t, e.conf, strings.Replace(readFile(t, e.conf), `email = "ops@example.test"`, `email = "`+email+`"`, 1))
	}
	withEmail(files, "ops@example.test")
	cmd, out := e.serveLogged()
	waitCount(t, out, "msg=serving", 1)
	const warn = "key=email"
	steps := []struct {
		sites, email string
		warns        int
	}{
		{files + acme, "new@example.test", 0}, // the Manager is made with it
		{files + acme, "ops@example.test", 1}, // the Manager keeps new@
	}
	for i, s := range steps {
		withEmail(s.sites, s.email)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitCount(t, out, "config reloaded", i+1)
		if got := strings.Count(out.String(), warn); got != s.warns {
			t.Errorf("after reload %d (email = %q): %d warnings naming email, want %d", i+1, s.email, got, s.warns)
		}
	}
	e.waitIssued("a.example.test", 60*time.Second)
}

// TestTrialSignalsDuringStart: a SIGHUP (systemctl reload right after
// systemctl start) or SIGUSR1 (logrotate) that arrives while serve is
// still starting does not end it: before, both were caught only once it
// served, and until then each killed the process. The SIGHUP is acted
// on once serve runs: the config is read again. The config file is a
// FIFO here, so that the test knows serve is reading it when it sends
// the signals.
func TestTrialSignalsDuringStart(t *testing.T) {
	e := newEnv(t)
	e.config(fmt.Sprintf("[[site]]\nnames = [\"a.example.test\"]\nroot = %q\n", filepath.Join(e.dir, "www")))
	content := readFile(t, e.conf)
	if err := os.Remove(e.conf); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(e.conf, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, out := e.serveLogged()
	exited := make(chan struct{})
	go func() {
		for running(cmd.Process.Pid) {
			time.Sleep(20 * time.Millisecond)
		}
		close(exited)
	}()
	// feed opens the FIFO as soon as serve reads it, and writes the config.
	feed := func(signal func()) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			f, err := os.OpenFile(e.conf, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				if signal != nil {
					signal()
				}
				_, err = f.WriteString(content)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			select {
			case <-exited:
				t.Fatalf("serve ended while starting:\n%s", out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve never read its config: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	feed(func() {
		for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
			if err := cmd.Process.Signal(s); err != nil {
				t.Fatal(err)
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "msg=serving") {
		select {
		case <-exited:
			t.Fatalf("serve ended while starting:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	feed(nil) // the reload the SIGHUP asked for
	for !strings.Contains(out.String(), "config reloaded") {
		select {
		case <-exited:
			t.Fatalf("serve ended:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload after the SIGHUP sent while serve started:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitCount(t, out, "log files reopened", 1)
}

// running reports whether process pid runs: it exists and is no zombie
// (a child that ended and that the test has not waited for yet).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestTrialCertsSignals: the certs daemon, like serve, is not ended by
// a SIGHUP or SIGUSR1 that arrives while it starts (here while it reads
// its config, a FIFO), nor by a SIGUSR1 once it runs (logrotate's, which
// docs/config.md says reopens the log files): before, SIGUSR1 ended it
// at any time, and SIGHUP until it ran. SIGHUP is logged as ignored,
// SIGUSR1 reopens the log files.
func TestTrialCertsSignals(t *testing.T) {
	e := newEnv(t)
	conf, _, _ := e.certsConfig("c.example.test", filepath.Join(e.dir, "acme-challenge"))
	if err := os.MkdirAll(filepath.Join(e.dir, "acme-challenge"), 0o755); err != nil {
		t.Fatal(err)
	}
	content := readFile(t, conf)
	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	ce := &certsEnv{env: e}
	cmd, out := ce.certsDaemon(conf)
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.OpenFile(conf, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
			}
			_, err = f.WriteString(content)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if !running(cmd.Process.Pid) || time.Now().After(deadline) {
			t.Fatalf("certs never read its config:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for !strings.Contains(out.String(), "log files reopened") || !strings.Contains(out.String(), "SIGHUP ignored") {
		if !running(cmd.Process.Pid) {
			t.Fatalf("certs ended:\n%s", out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("the signals sent while certs started were not handled:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitCount(t, out, "log files reopened", 2)
	if !running(cmd.Process.Pid) {
		t.Fatalf("certs ended after SIGUSR1:\n%s", out.String())
	}
}
