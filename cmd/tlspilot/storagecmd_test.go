package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// TestStorageMigrateRoundTrip: a file storage holding a certificate,
// account and sealed key from Pebble is migrated into a real PostgreSQL
// (a dry run first writes nothing): every key equal byte for byte, no
// value in the database holds the KEK or a usable private key, and with
// storage = the database and kek_file = the source's KEK, status shows
// the same serial, renew and serve place no order and serve serves that
// certificate. A second migrate into the now non-empty database is
// refused. The database migrated back into a fresh directory is equal
// again, and with the original KEK copied in, the same holds.
func TestStorageMigrateRoundTrip(t *testing.T) {
	e := newEnv(t)
	const name = "migrate.example.test"
	conf := e.config(fmt.Sprintf("[[site]]\nnames = [%q]\nroot = %q\n", name, filepath.Join(e.dir, "www")))
	stop := migrateServe(t, conf)
	e.waitIssued(name, 60*time.Second)
	serial := servedSerial(t, e, name)
	stop()
	src, kek := filepath.Join(e.dir, "storage"), filepath.Join(e.dir, "storage", "kek")
	pg := testenv.StartPostgres(t)

	out := migrateOK(t, "--dry-run", "--from", src, "--to", pg.URL)
	if !strings.Contains(out, "would copy") || !strings.Contains(out, "nothing was written") {
		t.Errorf("dry run printed no plan:\n%s", out)
	}
	if n := len(allValues(t, openPG(t, pg.URL))); n != 0 {
		t.Fatalf("the dry run wrote %d records", n)
	}
	out = migrateOK(t, "--from", src, "--to", pg.URL)
	for _, want := range []string{"verified", "kek_file", kek, "1 certificate"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}
	files := allValues(t, openFS(t, src))
	checkSameValues(t, files, allValues(t, openPG(t, pg.URL)))
	checkNoSecrets(t, dumpValues(t, pg.URL), readFileT(t, kek))
	pgConf := withStorage(t, e, conf, "pg.toml", pg.URL, kek)
	checkStatus(t, e, pgConf, name, serial)
	checkServed(t, e, pgConf, name, serial)
	inPG := allValues(t, openPG(t, pg.URL)) // renew may have updated the renewal state

	code, out, errOut := runBinary(t, "storage", "migrate", "--from", src, "--to", pg.URL)
	if code != 1 || !strings.Contains(errOut, "already holds") || !strings.Contains(errOut, "--force") {
		t.Errorf("migrate into a non-empty database: exit %d, want 1 and a refusal naming --force\n%s%s", code, out, errOut)
	}
	checkSameValues(t, inPG, allValues(t, openPG(t, pg.URL)))

	back := filepath.Join(t.TempDir(), "restored")
	out = migrateOK(t, "--from", pg.URL, "--to", back, "--kek", kek)
	if !strings.Contains(out, "install -m 0400 "+kek+" "+filepath.Join(back, "kek")) {
		t.Errorf("migrate to a directory does not say how to bring the KEK:\n%s", out)
	}
	checkSameValues(t, inPG, allValues(t, openFS(t, back)))
	checkRestored(t, e, conf, back, kek, name, serial)
}

// checkRestored copies the KEK into the restored storage back and checks
// that status shows serial, renew and serve order nothing, and serve
// serves serial.
func checkRestored(t *testing.T, e *env, conf, back, kek, name, serial string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(back, "kek"), readFileT(t, kek), 0o400); err != nil {
		t.Fatal(err)
	}
	restored := withStorage(t, e, conf, "restored.toml", back, "")
	checkStatus(t, e, restored, name, serial)
	checkServed(t, e, restored, name, serial)
}

// checkServed requires serve with conf to serve serial for name and to
// place no order.
func checkServed(t *testing.T, e *env, conf, name, serial string) {
	t.Helper()
	orders := e.p.Orders()
	stop := migrateServe(t, conf)
	defer stop()
	e.waitIssued(name, 30*time.Second)
	if got := servedSerial(t, e, name); !sameSerial(got, serial) {
		t.Errorf("serve with %s serves serial %s, want %s", filepath.Base(conf), got, serial)
	}
	time.Sleep(2 * time.Second) // an order placed at start would show by now
	if n := e.p.Orders(); n != orders {
		t.Errorf("serve with %s placed %d orders, want 0", filepath.Base(conf), n-orders)
	}
}

// withStorage writes a copy of conf named file, its storage line
// replaced by storage (and kek_file, if kek is set), and returns its path.
func withStorage(t *testing.T, e *env, conf, file, storage, kek string) string {
	t.Helper()
	text := readFileT(t, conf)
	old := fmt.Sprintf("storage = %q\n", filepath.Join(e.dir, "storage"))
	if !bytes.Contains(text, []byte(old)) {
		t.Fatalf("config has no line %q", old)
	}
	lines := fmt.Sprintf("storage = %q\n", storage)
	if kek != "" {
		lines += fmt.Sprintf("kek_file = %q\n", kek)
	}
	path := filepath.Join(e.dir, file)
	write(t, path, strings.Replace(string(text), old, lines, 1))
	return path
}

// checkStatus requires status with conf to show one valid certificate
// with serial, and renew (not forced) to succeed without an order.
func checkStatus(t *testing.T, e *env, conf, name, serial string) {
	t.Helper()
	orders := e.p.Orders()
	r, code := status(t, statusSchema(t), conf)
	if code != tlspilot.ExitOK || len(r.Certificates) != 1 || !sameSerial(r.Certificates[0].Serial, serial) {
		t.Fatalf("status with %s: exit %d, %+v; want one valid certificate with serial %s", filepath.Base(conf), code, r.Certificates, serial)
	}
	if code, out, errOut := runBinary(t, "renew", "--config", conf, name); code != 0 {
		t.Errorf("renew with %s: exit %d\n%s%s", filepath.Base(conf), code, out, errOut)
	}
	if n := e.p.Orders(); n != orders {
		t.Errorf("renew with %s placed %d orders, want 0", filepath.Base(conf), n-orders)
	}
}

// sameSerial compares hex serials, ignoring leading zeros and case.
func sameSerial(a, b string) bool {
	return a != "" && strings.EqualFold(strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0"))
}

// migrateOK runs `tlspilot storage migrate args...` and requires exit 0.
func migrateOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runBinary(t, append([]string{"storage", "migrate"}, args...)...)
	if code != 0 {
		t.Fatalf("storage migrate %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	t.Logf("storage migrate %s:\n%s", strings.Join(args, " "), out)
	return out
}

// migrateServe starts `tlspilot serve --config conf` and returns a
// function that stops it (also called at cleanup).
func migrateServe(t *testing.T, conf string) (stop func()) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "serve", "--config", conf)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { stopServe(t, cmd, done, &out) }) }
	t.Cleanup(stop)
	return stop
}

// stopServe stops serve with SIGTERM (SIGKILL after 10 s) and shows its
// output if the test failed.
func stopServe(t *testing.T, cmd *exec.Cmd, done <-chan struct{}, out *syncBuffer) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if t.Failed() {
		t.Logf("serve output:\n%s", out.String())
	}
}

// openFS opens the file storage in dir read-only.
func openFS(t *testing.T, dir string) storage.Storage {
	t.Helper()
	s, err := fsstore.New(fsstore.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openPG opens the PostgreSQL storage at url.
func openPG(t *testing.T, url string) storage.Storage {
	t.Helper()
	s, err := pgstore.New(t.Context(), pgstore.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// allValues returns every key of s with its value.
func allValues(t *testing.T, s storage.Storage) map[string][]byte {
	t.Helper()
	keys, err := s.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if out[k], err = s.Load(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkSameValues requires got to hold exactly want's keys and values,
// among them a certificate and an account key.
func checkSameValues(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	var cert, account bool
	for k, v := range want {
		cert = cert || strings.HasSuffix(k, "/cert.json")
		account = account || strings.HasPrefix(k, "accounts/") && strings.HasSuffix(k, "/key")
		if g, ok := got[k]; !ok {
			t.Errorf("%s missing after the migration", k)
		} else if !bytes.Equal(g, v) {
			t.Errorf("%s differs after the migration: %d bytes, want %d", k, len(g), len(v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s appeared in the migration", k)
		}
	}
	if !cert || !account {
		t.Errorf("the storage holds no certificate (%v) or no account key (%v): %d keys", cert, account, len(want))
	}
}

// checkNoSecrets requires that no value holds the KEK (raw, hex or
// base64) or a private key that parses, and that the certificate's key
// is sealed: it opens under the KEK, and under another KEK it does not.
func checkNoSecrets(t *testing.T, values map[string][]byte, kek []byte) {
	t.Helper()
	forms := [][]byte{kek, []byte(hex.EncodeToString(kek)), []byte(base64.StdEncoding.EncodeToString(kek)),
		[]byte(base64.RawStdEncoding.EncodeToString(kek)), []byte(base64.RawURLEncoding.EncodeToString(kek))}
	sealed := 0
	for k, v := range values {
		for _, f := range forms {
			if bytes.Contains(v, f) {
				t.Errorf("%s holds the KEK", k)
			}
		}
		if why := usableKey(v); why != "" {
			t.Errorf("%s holds a usable private key: %s", k, why)
		}
		if strings.HasSuffix(k, "/cert.json") {
			checkSealed(t, k, v, kek)
			sealed++
		}
	}
	if sealed == 0 {
		t.Errorf("no certificate among %d values", len(values))
	}
}

// checkSealed requires the sealed key of certificate record v (stored
// under k) to open under kek only.
func checkSealed(t *testing.T, k string, v, kek []byte) {
	t.Helper()
	var c struct {
		SealedKey string `json:"sealed_key"`
	}
	if err := json.Unmarshal(v, &c); err != nil || c.SealedKey == "" {
		t.Fatalf("%s: no sealed key (%v)", k, err)
	}
	right, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := right.OpenKey([]byte(c.SealedKey), k); err != nil {
		t.Errorf("%s: the sealed key does not open under the source's KEK: %v", k, err)
	}
	other := make([]byte, keys.KEKSize)
	_, _ = rand.Read(other)
	wrong, _ := keys.NewSealer(other)
	if _, err := wrong.OpenKey([]byte(c.SealedKey), k); err == nil {
		t.Errorf("%s: the sealed key opens under another KEK", k)
	}
}

// readFileT returns the content of path.
func readFileT(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// migrateStore makes a file storage in dir holding values.
func migrateStore(t *testing.T, dir string, values map[string]string) {
	t.Helper()
	s, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		if err := s.Store(t.Context(), k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
}

// certRecord is a certificate record expiring at notAfter.
func certRecord(notAfter string) string {
	return fmt.Sprintf(`{"names":["a.example"],"not_after":%q}`, notAfter)
}

// TestStorageMigrateForce: into a directory that holds records, migrate
// refuses without --force (changing nothing), --dry-run --force writes
// nothing, and --force merges: a newer certificate and another account
// key in the destination are kept, an older certificate replaced, the
// destination's change record kept and told of the copied certificate,
// records only in the destination left.
func TestStorageMigrateForce(t *testing.T) {
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	migrateStore(t, src, map[string]string{
		"certs/newer-there/cert.json":  certRecord("2027-01-01T00:00:00Z"),
		"certs/older-there/cert.json":  certRecord("2027-01-01T00:00:00Z"),
		"certs/older-there/state.json": `{"attempts":0}`,
		"accounts/ca/acct/key":         "source account key",
		"changes.json":                 `{"seq":3}`,
		"challenges/http-01/t/o":       `{"key_auth":"x"}`,
	})
	before := map[string]string{
		"certs/newer-there/cert.json": certRecord("2028-01-01T00:00:00Z"),
		"certs/older-there/cert.json": certRecord("2026-01-01T00:00:00Z"),
		"accounts/ca/acct/key":        "destination account key",
		"changes.json":                `{"seq":10}`,
		"certs/only-there/cert.json":  certRecord("2026-06-01T00:00:00Z"),
	}
	migrateStore(t, dst, before)
	unchanged := func(when string) {
		t.Helper()
		got := allValues(t, openFS(t, dst))
		for k, v := range before {
			if string(got[k]) != v {
				t.Errorf("%s: %s is %q, want %q", when, k, got[k], v)
			}
		}
		if len(got) != len(before) {
			t.Errorf("%s: the destination holds %d records, want %d", when, len(got), len(before))
		}
	}

	code, out, errOut := runCLI(t, "storage", "migrate", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "destination "+dst+" already holds 5 records") {
		t.Errorf("without --force: exit %d, want 1 and a refusal naming the destination\n%s%s", code, out, errOut)
	}
	unchanged("after the refusal")
	code, out, errOut = runCLI(t, "storage", "migrate", "--dry-run", "--force", "--from", src, "--to", dst)
	if code != 0 || !strings.Contains(out, "would replace") || !strings.Contains(out, "kept certificate certs/newer-there") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	unchanged("after the dry run")

	code, out, errOut = runCLI(t, "storage", "migrate", "--force", "--from", src, "--to", dst)
	if code != 0 {
		t.Fatalf("--force: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("--force:\n%s", out)
	got := allValues(t, openFS(t, dst))
	for k, want := range map[string]string{
		"certs/newer-there/cert.json":  certRecord("2028-01-01T00:00:00Z"),
		"certs/older-there/cert.json":  certRecord("2027-01-01T00:00:00Z"),
		"certs/older-there/state.json": `{"attempts":0}`,
		"accounts/ca/acct/key":         "destination account key",
		"certs/only-there/cert.json":   certRecord("2026-06-01T00:00:00Z"),
		"challenges/http-01/t/o":       `{"key_auth":"x"}`,
	} {
		if string(got[k]) != want {
			t.Errorf("after --force, %s is %q, want %q", k, got[k], want)
		}
	}
	var ch struct {
		Seq    int64 `json:"seq"`
		Recent []struct {
			ID string `json:"id"`
		} `json:"recent"`
	}
	if err := json.Unmarshal(got["changes.json"], &ch); err != nil || ch.Seq != 11 || len(ch.Recent) != 1 || ch.Recent[0].ID != "older-there" {
		t.Errorf("the destination's change record is %s (%v), want seq 11 noting older-there", got["changes.json"], err)
	}
	for _, want := range []string{"kept certificate certs/newer-there", "kept account accounts/ca/acct", "kept record changes.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestStorageMigrateRefusals: what migrate refuses, with the exit code
// and the storage or record named; the KEK and a key in clear are never
// copied.
func TestStorageMigrateRefusals(t *testing.T) {
	dir := t.TempDir()
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	withKEK := filepath.Join(dir, "with-kek")
	migrateStore(t, withKEK, map[string]string{"certs/a/cert.json": "{}", "backup/kek.json": `{"k":"` + base64.StdEncoding.EncodeToString(kek) + `"}`})
	if err := os.WriteFile(filepath.Join(withKEK, "kek"), kek, 0o400); err != nil {
		t.Fatal(err)
	}
	clear := filepath.Join(dir, "clear")
	migrateStore(t, clear, map[string]string{"certs/a/key.pem": "-----BEGIN PRIVATE KEY-----\nMII...\n-----END PRIVATE KEY-----\n"})
	plain := filepath.Join(dir, "plain")
	migrateStore(t, plain, map[string]string{"certs/a/cert.json": "{}"})
	other := filepath.Join(dir, "other")
	write(t, filepath.Join(other, "notes.txt"), "not a storage")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--from", withKEK}, 2, "both --from and --to are required"},
		{[]string{"--from", withKEK, "--to", filepath.Join(withKEK, "sub")}, 2, "overlap"},
		{[]string{"--from", "postgres://u:secret@db/x", "--to", "postgres://u:secret@db/x"}, 2, "postgres://u:xxxxx@db/x"},
		{[]string{"--from", filepath.Join(dir, "missing"), "--to", filepath.Join(dir, "new")}, 1, "source " + filepath.Join(dir, "missing") + ": not a tlspilot storage"},
		{[]string{"--from", plain, "--to", other}, 1, "destination " + other + ": exists, is not empty and is not a tlspilot storage"},
		{[]string{"--from", withKEK, "--to", filepath.Join(dir, "new1")}, 1, "backup/kek.json holds the key-encryption key"},
		{[]string{"--from", clear, "--to", filepath.Join(dir, "new2")}, 1, "certs/a/key.pem holds a private key in clear"},
	} {
		code, out, errOut := runCLI(t, append([]string{"storage", "migrate"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "secret") {
			t.Errorf("migrate %v: exit %d, stderr %q; want exit %d and %q\n%s", c.args, code, errOut, c.code, c.want, out)
		}
	}
	for _, d := range []string{"new", "new1", "new2"} {
		if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
			t.Errorf("a refused run created the destination %s", d)
		}
	}
	if code, out, _ := runCLI(t, "help", "storage"); code != 0 || !strings.Contains(out, "Usage: tlspilot storage migrate") {
		t.Errorf("help storage: exit %d\n%s", code, out)
	}
}

// TestStorageMigrateLockHeld: a certificate's issue lock held by another
// process (a running serve) fails the run after --lock-wait, naming the
// lock and the source, and nothing of it is copied.
func TestStorageMigrateLockHeld(t *testing.T) {
	src, dst := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "dst")
	migrateStore(t, src, map[string]string{"certs/a/cert.json": certRecord("2027-01-01T00:00:00Z")})
	holder, err := fsstore.New(fsstore.Options{Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	l, err := holder.Lock(t.Context(), "issue/a")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Unlock(t.Context()) }()
	code, out, errOut := runCLI(t, "storage", "migrate", "--lock-wait", "500ms", "--from", src, "--to", dst)
	want := "source " + src + ": lock issue/a: still held by another process after 500ms: is serve, certs or renew running on it?"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr %q; want 1 and %q\n%s", code, errOut, want, out)
	}
	if n := len(allValues(t, openFS(t, dst))); n != 0 {
		t.Errorf("%d records copied under a held lock", n)
	}
}

// TestStorageMigrateOtherKEK: migrate refuses, even with --force and
// changing nothing, a destination whose keys are sealed under another
// key-encryption key than the source's: told by the two kek-id records,
// or, for a destination without one, by opening its account key with
// the source directory's KEK.
func TestStorageMigrateOtherKEK(t *testing.T) {
	dir := t.TempDir()
	sealer := func(b byte) *keys.Sealer {
		s, err := keys.NewSealer(bytes.Repeat([]byte{b}, keys.KEKSize))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mine, theirs := sealer(1), sealer(2)
	k, err := keys.Generate(keys.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := theirs.SealKey(k, "accounts/ca/acct/key")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	migrateStore(t, src, map[string]string{"certs/a/cert.json": "{}", "kek-id": mine.ID() + "\n"})
	srcNoID := filepath.Join(dir, "src-no-id")
	migrateStore(t, srcNoID, map[string]string{"certs/a/cert.json": "{}"})
	write(t, filepath.Join(srcNoID, "kek"), string(bytes.Repeat([]byte{1}, keys.KEKSize)))
	if err := os.Chmod(filepath.Join(srcNoID, "kek"), 0o400); err != nil {
		t.Fatal(err)
	}
	withID := filepath.Join(dir, "dst-id")
	migrateStore(t, withID, map[string]string{"kek-id": theirs.ID() + "\n"})
	legacy := filepath.Join(dir, "dst-legacy")
	migrateStore(t, legacy, map[string]string{"accounts/ca/acct/key": string(sealed)})
	for _, c := range [][2]string{{src, withID}, {srcNoID, withID}, {srcNoID, legacy}} {
		before := allValues(t, openFS(t, c[1]))
		code, out, errOut := runCLI(t, "storage", "migrate", "--force", "--from", c[0], "--to", c[1])
		if code != 1 || !strings.Contains(errOut, "destination "+c[1]+": its keys are sealed under another key-encryption key") {
			t.Errorf("migrate --force %s into %s: exit %d, want 1 and the refusal\n%s%s", filepath.Base(c[0]), filepath.Base(c[1]), code, out, errOut)
		}
		if after := allValues(t, openFS(t, c[1])); len(after) != len(before) {
			t.Errorf("the refused run changed %s: %d records, had %d", filepath.Base(c[1]), len(after), len(before))
		}
	}
	same := filepath.Join(dir, "dst-same")
	migrateStore(t, same, map[string]string{"kek-id": mine.ID() + "\n"})
	if code, out, errOut := runCLI(t, "storage", "migrate", "--force", "--from", src, "--to", same); code != 0 {
		t.Errorf("into a storage of the same KEK: exit %d\n%s%s", code, out, errOut)
	}
}
