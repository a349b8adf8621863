package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPEM returns a chain of two certificates (leaf first) and a key.
func testPEM(t *testing.T, cn string) (chain, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cn, "intermediate " + cn} {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return chain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func allFiles(dir string) Options {
	return Options{
		Fullchain: filepath.Join(dir, "fullchain.pem"), Privkey: filepath.Join(dir, "privkey.pem"),
		Cert: filepath.Join(dir, "cert.pem"), Chain: filepath.Join(dir, "chain.pem"), Combined: filepath.Join(dir, "combined.pem"),
	}
}

func newFiles(t *testing.T, o Options) *Files {
	t.Helper()
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustWrite(t *testing.T, f *Files, chain, key []byte) bool {
	t.Helper()
	changed, err := f.Write(t.Context(), chain, key)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// TestWriteFiles: every file gets its content and mode, and the
// directory holds no temporary file afterwards.
func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	o := allFiles(dir)
	o.Mode = 0o640
	f := newFiles(t, o)
	chain, key := testPEM(t, "a.example")
	if !mustWrite(t, f, chain, key) {
		t.Fatal("first write: changed = false")
	}
	leaf, rest, err := splitChain(chain)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		data []byte
		mode fs.FileMode
	}{
		o.Fullchain: {chain, 0o644}, o.Privkey: {key, 0o640}, o.Cert: {leaf, 0o644}, o.Chain: {rest, 0o644},
		o.Combined: {append(append(append([]byte{}, key...), leaf...), rest...), 0o640},
	}
	for p, w := range want {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w.data) {
			t.Errorf("%s: content differs:\n%s", filepath.Base(p), got)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != w.mode {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(p), fi.Mode().Perm(), w.mode)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(want) {
		t.Errorf("directory holds %d entries, want %d (a temporary file left?)", len(ents), len(want))
	}
}

// TestDefaultKeyMode: without a mode the key files are 0600.
func TestDefaultKeyMode(t *testing.T) {
	dir := t.TempDir()
	f := newFiles(t, allFiles(dir))
	chain, key := testPEM(t, "a.example")
	mustWrite(t, f, chain, key)
	for _, n := range []string{"privkey.pem", "combined.pem"} {
		if fi, _ := os.Stat(filepath.Join(dir, n)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", n, fi.Mode().Perm())
		}
	}
}

// TestUnchangedContentNotWritten: writing the same certificate again
// replaces no file (same inode, same modification time) and reports no
// change; a new certificate replaces every file by rename (new inode).
func TestUnchangedContentNotWritten(t *testing.T) {
	dir := t.TempDir()
	o := allFiles(dir)
	f := newFiles(t, o)
	chain, key := testPEM(t, "a.example")
	mustWrite(t, f, chain, key)
	before := inodes(t, o)
	if mustWrite(t, f, chain, key) {
		t.Error("same content: changed = true")
	}
	if after := inodes(t, o); after != before {
		t.Errorf("same content rewrote files: %v, then %v", before, after)
	}
	chain2, key2 := testPEM(t, "a.example")
	if !mustWrite(t, f, chain2, key2) {
		t.Error("new certificate: changed = false")
	}
	after := inodes(t, o)
	for i := range before {
		if after[i] == before[i] {
			t.Errorf("file %d replaced in place (inode %d kept), not renamed over", i, after[i])
		}
	}
}

func inodes(t *testing.T, o Options) [5]uint64 {
	t.Helper()
	var out [5]uint64
	for i, p := range []string{o.Fullchain, o.Privkey, o.Cert, o.Chain, o.Combined} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = fi.Sys().(*syscall.Stat_t).Ino
	}
	return out
}

// TestModeCorrectedWithoutRewrite: a file with the right content but
// another mode gets the configured mode, and counts as no change.
func TestModeCorrectedWithoutRewrite(t *testing.T) {
	dir := t.TempDir()
	o := Options{Privkey: filepath.Join(dir, "privkey.pem"), Mode: 0o600}
	chain, key := testPEM(t, "a.example")
	mustWrite(t, newFiles(t, o), chain, key)
	o.Mode = 0o640
	if mustWrite(t, newFiles(t, o), chain, key) {
		t.Error("mode change reported as a content change")
	}
	if fi, _ := os.Stat(o.Privkey); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %04o, want 0640", fi.Mode().Perm())
	}
}

// TestOptionsRejected: a mode open to others, no file, a pidfile without
// a signal.
func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{Privkey: "/x/k", Mode: 0o644},
		{},
		{Privkey: "/x/k", PIDFile: "/run/x.pid"},
		{Privkey: "/x/k", Reload: []string{"true"}, PIDFile: "/run/x.pid", Signal: syscall.SIGHUP},
		{Privkey: "/x/k", Owner: "no-such-user-here"},
		// Past 32 bits: chown would take 4294967295 as "unchanged" and
		// 4294967296 as 0, root.
		{Privkey: "/x/k", Owner: "4294967295"},
		{Privkey: "/x/k", Owner: "4294967296"},
		{Privkey: "/x/k", Group: "4294967296"},
		{Privkey: "/x/k", Group: "-1"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) = nil error", o)
		}
	}
}

// TestPermissionDeniedKeepsOldFiles runs for real as an unprivileged
// user (the test re-runs itself under setpriv when it runs as root): a
// deploy directory it may not write gives an error naming the path and
// the permission, and the previous files stay as they were, with their
// modes.
func TestPermissionDeniedKeepsOldFiles(t *testing.T) {
	if dir := os.Getenv("DEPLOY_TEST_DIR"); dir != "" {
		permissionChild(t, dir)
		return
	}
	base := t.TempDir()
	dir := filepath.Join(base, "live")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	o := allFiles(dir)
	chain, key := testPEM(t, "old.example")
	mustWrite(t, newFiles(t, o), chain, key)
	before := snapshot(t, dir)
	if os.Geteuid() == 0 {
		// The files and their directory belong to root; the child runs as
		// nobody and may read (the directories above are 0755) but not
		// write.
		for _, d := range []string{base, filepath.Dir(base)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0],
			"-test.run=^TestPermissionDeniedKeepsOldFiles$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "DEPLOY_TEST_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child as nobody: %v\n%s", err, out)
		}
		t.Logf("child as nobody:\n%s", out)
	} else {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(dir, 0o755) })
		permissionChild(t, dir)
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("files changed:\nbefore %s\nafter  %s", before, after)
	}
}

// permissionChild tries to deploy a new certificate into dir, which it
// may not write, and checks the error.
func permissionChild(t *testing.T, dir string) {
	chain, key := testPEM(t, "new.example")
	_, err := newFiles(t, allFiles(dir)).Write(t.Context(), chain, key)
	if err == nil {
		t.Fatal("Write into a read-only directory succeeded")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(msg, filepath.Join(dir, "fullchain.pem")) ||
		!strings.Contains(msg, "permission denied: needs write and search permission on the directory "+dir) ||
		!strings.Contains(msg, fmt.Sprintf("(tlspilot runs as uid %d gid %d)", os.Geteuid(), os.Getegid())) {
		t.Errorf("error does not name the path, the permission and the user: %v", err)
	}
}

// snapshot describes every file of dir: name, mode and content hash.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		fi, _ := e.Info()
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b.WriteString(e.Name() + " " + fi.Mode().String() + " " + string(data[len(data)-40:]) + "; ")
	}
	return b.String()
}

// TestReloadCommand: the command runs without a shell; a failure
// carries its output; a command that hangs is killed at the timeout.
func TestReloadCommand(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	f := newFiles(t, Options{Privkey: filepath.Join(dir, "k"), Reload: []string{"touch", mark + " $(id)"}})
	if err := f.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark + " $(id)"); err != nil {
		t.Errorf("the argument was not passed as is: %v", err)
	}
	f = newFiles(t, Options{Privkey: "/x/k", Reload: []string{"sh", "-c", "echo nginx: bad config >&2; exit 3"}})
	err := f.Reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "exit status 3: nginx: bad config") {
		t.Errorf("failing reload: %v", err)
	}
	f = newFiles(t, Options{Privkey: "/x/k", Reload: []string{"sh", "-c", "sleep 30 & sleep 30"}, ReloadTimeout: 200 * time.Millisecond})
	start := time.Now()
	err = f.Reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") || time.Since(start) > 5*time.Second {
		t.Errorf("hanging reload: %v after %s", err, time.Since(start))
	}
}

// TestReloadHidesSecretEnv: a variable tlspilot reads a secret from
// (Options.HideEnv: tsig_secret_env) is not passed to the reload
// command; the rest of the environment is.
func TestReloadHidesSecretEnv(t *testing.T) {
	t.Setenv("DEPLOY_TEST_TSIG", "c2VjcmV0")
	t.Setenv("DEPLOY_TEST_INHERITED", "yes")
	out := filepath.Join(t.TempDir(), "env")
	f := newFiles(t, Options{Privkey: "/x/k", Reload: []string{"sh", "-c", "env > " + out}, HideEnv: []string{"DEPLOY_TEST_TSIG"}})
	if err := f.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "DEPLOY_TEST_TSIG") || !strings.Contains(string(env), "DEPLOY_TEST_INHERITED=yes") {
		t.Errorf("environment of the reload command:\n%s\nwant DEPLOY_TEST_INHERITED and not DEPLOY_TEST_TSIG", env)
	}
}

// TestReloadSignal sends the signal to the process of the pidfile.
func TestReloadSignal(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(dir, "x.pid")
	if err := os.WriteFile(pidfile, []byte(" "+strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sig, err := ParseSignal("sigterm")
	if err != nil {
		t.Fatal(err)
	}
	f := newFiles(t, Options{Privkey: "/x/k", Signal: sig, PIDFile: pidfile})
	if err := f.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("process ended with %v, want killed by SIGTERM", err)
	}
	if err := os.WriteFile(pidfile, []byte("nginx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "holds no process id") {
		t.Errorf("bad pidfile: %v", err)
	}
}

// TestOwnerAndGroup: the files get the configured owner and group (as
// root), set on the temporary file before it is renamed into place; a
// file with the right content but another owner is corrected.
func TestOwnerAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		// Only root may give a file away; as another user, a group the
		// user belongs to is what can be tested.
		testOwnGroup(t)
		return
	}
	dir := t.TempDir()
	o := Options{Fullchain: filepath.Join(dir, "fullchain.pem"), Privkey: filepath.Join(dir, "privkey.pem"),
		Owner: "nobody", Group: "65534", Mode: 0o640}
	chain, key := testPEM(t, "a.example")
	mustWrite(t, newFiles(t, o), chain, key)
	for _, p := range []string{o.Fullchain, o.Privkey} {
		if uid, gid := owner(t, p); uid != 65534 || gid != 65534 {
			t.Errorf("%s owned by %d:%d, want 65534:65534", filepath.Base(p), uid, gid)
		}
	}
	if err := os.Chown(o.Privkey, 0, 0); err != nil {
		t.Fatal(err)
	}
	if mustWrite(t, newFiles(t, o), chain, key) {
		t.Error("an owner correction counted as a change")
	}
	if uid, gid := owner(t, o.Privkey); uid != 65534 || gid != 65534 {
		t.Errorf("privkey owned by %d:%d after correction, want 65534:65534", uid, gid)
	}
}

func testOwnGroup(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getgid()
	o := Options{Privkey: filepath.Join(dir, "privkey.pem"), Group: strconv.Itoa(gid)}
	chain, key := testPEM(t, "a.example")
	mustWrite(t, newFiles(t, o), chain, key)
	if _, g := owner(t, o.Privkey); g != gid {
		t.Errorf("group %d, want %d", g, gid)
	}
}

func owner(t *testing.T, p string) (uid, gid int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// TestUnreadableTargetRefused: a file that exists but cannot be read
// cannot be compared; it is an error naming the path and the permission,
// not a rewrite (and reload) at every run. Run as nobody when root.
func TestUnreadableTargetRefused(t *testing.T) {
	if dir := os.Getenv("DEPLOY_TEST_UNREADABLE"); dir != "" {
		chain, key := testPEM(t, "new.example")
		_, err := newFiles(t, Options{Privkey: filepath.Join(dir, "privkey.pem")}).Write(t.Context(), chain, key)
		if err == nil || !strings.Contains(err.Error(), "permission denied: needs read permission on the file") {
			t.Fatalf("error: %v", err)
		}
		t.Logf("error: %v", err)
		return
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "privkey.pem"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // writable, but the file is not readable
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0],
			"-test.run=^TestUnreadableTargetRefused$", "-test.count=1", "-test.v")
	} else {
		if err := os.Chmod(filepath.Join(dir, "privkey.pem"), 0); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(os.Args[0], "-test.run=^TestUnreadableTargetRefused$", "-test.count=1", "-test.v")
	}
	cmd.Env = append(os.Environ(), "DEPLOY_TEST_UNREADABLE="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
	if b, _ := os.ReadFile(filepath.Join(dir, "privkey.pem")); string(b) != "old" {
		t.Errorf("the file was replaced: %q", b)
	}
}

// TestReloadOutputBounded: a reload command that writes without end
// (a verbose init script, a loop) is not kept whole in memory: only the
// end of its output goes into the error, and the rest is dropped as it
// comes.
func TestReloadOutputBounded(t *testing.T) {
	// 64 MiB of output, then the line that says why it failed.
	f := newFiles(t, Options{Privkey: "/x/k", Reload: []string{"sh", "-c", "head -c 67108864 /dev/zero | tr '\\0' x; echo; echo nginx: bad config >&2; exit 3"}})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := f.Reload(t.Context())
	runtime.ReadMemStats(&after)
	if err == nil || !strings.HasSuffix(err.Error(), "nginx: bad config") || len(err.Error()) > 2048 {
		t.Errorf("failing reload: %d bytes of error ending %q", len(err.Error()), err.Error()[max(0, len(err.Error())-100):])
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Errorf("reading 64 MiB of the command's output allocated %d MiB: it is kept whole", grown>>20)
	}
}

// TestReloadLeavesDaemon: a reload command that exits 0 after starting
// a daemon which keeps its standard output open (an init script's
// "restart") succeeded: the daemon is not waited for past a moment, not
// counted as a failure, and not killed.
func TestReloadLeavesDaemon(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "daemon.pid")
	f := newFiles(t, Options{Privkey: "/x/k", Reload: []string{"sh", "-c", "sleep 30 & echo $! > " + pidfile + "; exit 0"}})
	if err := f.Reload(t.Context()); err != nil {
		t.Errorf("reload that started a daemon: %v", err)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if err := syscall.Kill(pid, 0); err != nil {
		t.Errorf("the daemon the reload command started is gone: %v", err)
	}
}
