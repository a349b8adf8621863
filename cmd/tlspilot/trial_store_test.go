package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestTrialMigrateSameStorage: a destination that is the source under
// another name (a symbolic link to the directory, the same database by
// another URL) is refused at once as the same storage, changing nothing,
// also with --force: it was taken for another storage, and the run waited
// for its own locks and then blamed a running serve. A destination inside
// the source reached through a link is refused as overlapping.
func TestTrialMigrateSameStorage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	values := map[string]string{"certs/a/cert.json": certRecord("2027-01-01T00:00:00Z"), "accounts/ca/acct/key": "sealed"}
	migrateStore(t, src, values)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(src, link); err != nil {
		t.Fatal(err)
	}
	pg := testenv.StartPostgres(t)
	s := openPG(t, pg.URL)
	for k, v := range values {
		if err := s.Store(t.Context(), k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	otherURL := "postgresql" + strings.TrimPrefix(pg.URL, "postgres") + "&application_name=migrate"
	for _, c := range []struct {
		from, to string
		want     string
	}{
		{src, link, "same storage"},
		{link + "/", src, "same storage"},
		{link, filepath.Join(src, "sub"), "overlap"},
		{pg.URL, otherURL, "same storage"},
	} {
		code, out, errOut := runCLI(t, "storage", "migrate", "--force", "--lock-wait", "300ms", "--from", c.from, "--to", c.to)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("migrate --force --from %s --to %s: exit %d, stderr %q; want a refusal saying %q\n%s", c.from, c.to, code, errOut, c.want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(src, "sub")); err == nil {
		t.Error("a refused run created the destination inside the source")
	}
	for name, st := range map[string]map[string][]byte{"directory": allValues(t, openFS(t, src)), "database": allValues(t, s)} {
		if len(st) != len(values) {
			t.Errorf("the %s holds %d records after the refusals, want %d", name, len(st), len(values))
		}
		for k, v := range values {
			if string(st[k]) != v {
				t.Errorf("the %s's %s is %q after the refusals, want %q", name, k, st[k], v)
			}
		}
	}
}

// TestTrialMigrateResumesAccount: a run stopped (kill -9) after it
// copied an account's key but before the account's retired keys, run
// again with --force, copies what is missing: the account was kept as
// "its account key differs from the source's" though the keys were
// equal, and its retired keys never reached the destination.
func TestTrialMigrateResumesAccount(t *testing.T) {
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	values := map[string]string{
		"accounts/ca/acct/account.json":           `{"url":"https://ca.example/acct/2"}`,
		"accounts/ca/acct/key":                    "sealed key 2",
		"accounts/ca/acct/retired/1700000000.key": "sealed key 1",
	}
	migrateStore(t, src, values)
	migrateStore(t, dst, map[string]string{
		"accounts/ca/acct/account.json": values["accounts/ca/acct/account.json"],
		"accounts/ca/acct/key":          values["accounts/ca/acct/key"],
	})
	code, out, errOut := runCLI(t, "storage", "migrate", "--force", "--from", src, "--to", dst)
	if code != 0 {
		t.Fatalf("--force: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "kept account") {
		t.Errorf("an account whose key is the source's was kept as differing:\n%s", out)
	}
	got := allValues(t, openFS(t, dst))
	for k, v := range values {
		if string(got[k]) != v {
			t.Errorf("after the second run, %s is %q, want %q", k, got[k], v)
		}
	}
}

// TestTrialMigrateKEKFIFO: a --kek that is a FIFO, or a FIFO where the
// destination's kek would be, is not waited on for ever: --kek is
// refused as not a regular file, and the destination's is not taken for
// the key.
func TestTrialMigrateKEKFIFO(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	migrateStore(t, src, map[string]string{"certs/a/cert.json": certRecord("2027-01-01T00:00:00Z")})
	fifo := filepath.Join(dir, "kek")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "storage", "migrate", "--kek", fifo, "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "not a regular file") {
		t.Errorf("--kek FIFO: exit %d, stderr %q; want 1 and not a regular file\n%s", code, errOut, out)
	}
	kek := make([]byte, 32)
	if err := os.WriteFile(filepath.Join(src, "kek"), kek, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	migrateStore(t, dst, nil)
	if err := syscall.Mkfifo(filepath.Join(dst, "kek"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "storage", "migrate", "--force", "--from", src, "--to", dst)
	if code != 0 || strings.Contains(out, "is that key") {
		t.Errorf("a FIFO at the destination's kek: exit %d\n%s%s", code, out, errOut)
	}
}

// TestTrialMigrateDamagedSourceCertKept: with --force, a certificate
// record of the source that does not decode (truncated) does not replace
// the destination's good one: it was taken for older, and the nodes on
// the destination lost the certificate in service to a damaged record.
func TestTrialMigrateDamagedSourceCertKept(t *testing.T) {
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	good := certRecord("2027-01-01T00:00:00Z")
	migrateStore(t, src, map[string]string{"certs/a/cert.json": good[:20], "certs/a/state.json": `{"attempts":1}`})
	migrateStore(t, dst, map[string]string{"certs/a/cert.json": good})
	code, out, errOut := runCLI(t, "storage", "migrate", "--force", "--from", src, "--to", dst)
	if code != 0 {
		t.Fatalf("--force: exit %d\n%s%s", code, out, errOut)
	}
	if got := allValues(t, openFS(t, dst))["certs/a/cert.json"]; string(got) != good {
		t.Errorf("the destination's certificate is %q, want its good record kept", got)
	}
	if !strings.Contains(out, "kept certificate certs/a") || !strings.Contains(out, "does not decode") {
		t.Errorf("output does not say the destination's certificate was kept and why:\n%s", out)
	}
}
