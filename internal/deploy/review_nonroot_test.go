package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// reviewAsEnv names the environment variable that makes the test binary,
// started by runAsNobody, run one step as uid 65534 instead of its tests.
const reviewAsEnv = "TLSPILOT_DEPLOY_REVIEW_STEP"

// TestReviewNonRootStep is not a test: it is the step runAsNobody asks
// for, run in a test binary started as uid 65534.
func TestReviewNonRootStep(t *testing.T) {
	step := os.Getenv(reviewAsEnv)
	if step == "" {
		return
	}
	dir := os.Getenv(reviewAsEnv + "_DIR")
	chain, key := []byte(os.Getenv(reviewAsEnv+"_CHAIN")), []byte(os.Getenv(reviewAsEnv+"_KEY"))
	switch step {
	case "write":
		o := Options{Fullchain: filepath.Join(dir, "fullchain.pem"), Privkey: filepath.Join(dir, "privkey.pem"), Group: "65534", Mode: 0o640}
		f := newFiles(t, o)
		for i, want := range []bool{true, false} {
			if changed, err := f.Write(t.Context(), chain, key); err != nil || changed != want {
				t.Fatalf("Write #%d = %v, %v; want %v", i+1, changed, err, want)
			}
		}
		if in, err := f.InPlace(t.Context(), chain, key); err != nil || !in {
			t.Fatalf("InPlace = %v, %v; want true", in, err)
		}
	case "signal":
		f := newFiles(t, Options{Privkey: "/x/k", Signal: syscall.SIGWINCH, PIDFile: filepath.Join(dir, "app.pid")})
		if err := f.Reload(t.Context()); err != nil {
			t.Fatalf("Reload: %v", err)
		}
	}
}

// runAsNobody runs step of TestReviewNonRootStep as uid and gid 65534.
func runAsNobody(t *testing.T, step, dir string, chain, key []byte) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root to start a process as uid 65534")
	}
	exe := nobodyExecutable(t)
	cmd := exec.Command(exe, "-test.run=^TestReviewNonRootStep$", "-test.v")
	cmd.Env = append(os.Environ(), reviewAsEnv+"="+step, reviewAsEnv+"_DIR="+dir,
		reviewAsEnv+"_CHAIN="+string(chain), reviewAsEnv+"_KEY="+string(key), "GOCACHE=/nonexistent", "HOME=/nonexistent")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s as uid 65534: %v\n%s", step, err, out)
	}
}

// nobodyTempDir returns a new folder that uid 65534 can reach, with the
// given owner and mode.
func nobodyTempDir(t *testing.T, uid int, mode os.FileMode) string {
	t.Helper()
	base, err := os.MkdirTemp("/tmp", "deploy-review-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "d")
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReviewNonRoot: tlspilot running as a service user (not root) with
// a group set deploys into its own folder and then changes nothing; and
// reads a pidfile in a folder it may only search (0711: path resolution
// needs nothing more, as os.ReadFile did before the folder walk).
func TestReviewNonRoot(t *testing.T) {
	chain, key := testPEM(t, "a.example")
	t.Run("write with group", func(t *testing.T) {
		runAsNobody(t, "write", nobodyTempDir(t, 65534, 0o755), chain, key)
	})
	t.Run("pidfile in a search-only folder", func(t *testing.T) {
		dir := nobodyTempDir(t, 0, 0o711)
		cmd, _ := sleeper(t, 65534)
		if err := os.WriteFile(filepath.Join(dir, "app.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		runAsNobody(t, "signal", dir, chain, key)
	})
}

// nobodyExecutable copies the test binary where uid 65534 may run it
// (go test builds it in a folder of mode 0700).
func nobodyExecutable(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(filepath.Dir(nobodyTempDir(t, 0, 0o755)), "deploy.test")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}
