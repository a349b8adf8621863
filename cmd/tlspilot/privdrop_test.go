package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeDropsPrivileges: started as root with user = "nobody", serve
// binds its ports and then runs as nobody, and the storage it creates
// belongs to nobody. The test runs as root (CI and these machines do);
// anywhere else it fails, since it cannot show what it is meant to.
func TestServeDropsPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to show that privileges are dropped")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	// A directory nobody can write into, for its storage.
	dir, err := os.MkdirTemp("", "tlspilot-privdrop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf("storage = %q\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nuser = \"nobody\"\nca = \"https://127.0.0.1:1/dir\"\n\n[[site]]\nnames = [\"priv.example.test\"]\n", filepath.Join(dir, "storage")))
	cmd := exec.Command(buildBinary(t), "serve", "--config", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		uid := procUID(t, cmd.Process.Pid)
		fi, err := os.Stat(filepath.Join(dir, "storage", "kek"))
		if uid == nobody.Uid && err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			if fmt.Sprint(st.Uid) != nobody.Uid {
				t.Errorf("key-encryption key owned by uid %d, want nobody (%s)", st.Uid, nobody.Uid)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve runs as uid %q (want nobody, %s); storage: %v", uid, nobody.Uid, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// procUID returns the real uid of a process, from /proc.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	return ""
}

// TestServeStartedAsTheUser: a serve that systemd (User=) starts as the
// very user its config names runs, with nothing to drop; one started as
// another unprivileged user stops with an error that says only root can
// switch. Before, both stopped at "drop supplementary groups: operation
// not permitted".
func TestServeStartedAsTheUser(t *testing.T) {
	bin, dir, nobody := asNobody(t)
	start := func(name, runAs string) (*exec.Cmd, *strings.Builder) {
		conf := filepath.Join(dir, name+".toml")
		writeFile(t, conf, fmt.Sprintf("storage = %q\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nuser = %q\nca = \"https://127.0.0.1:1/dir\"\n\n[[site]]\nnames = [\"asuser.example.test\"]\n", filepath.Join(dir, name), runAs))
		os.Chmod(conf, 0o644)
		cmd := exec.Command(bin, "serve", "--config", conf)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &stderr
	}

	cmd, stderr := start("same", "nobody")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve started as nobody with user = \"nobody\" exited (%v): %s", err, stderr)
		default:
		}
		if _, err := os.Stat(filepath.Join(dir, "same", "kek")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve started as nobody did not create its storage: %s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}

	other, stderr2 := start("other", "daemon")
	err := other.Wait()
	if err == nil || !strings.Contains(stderr2.String(), "only a process started as root") || !strings.Contains(stderr2.String(), "other.toml:5: user:") {
		t.Errorf("serve started as nobody with user = \"daemon\": %v, stderr %q", err, stderr2)
	}
}

// asNobody returns the built binary copied where nobody may run it, a
// directory (mode 0777, removed at the end) for nobody's files, and
// nobody's credentials. The test must run as root.
func asNobody(t *testing.T) (bin, dir string, cred *syscall.Credential) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to run tlspilot as nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	dir, err = os.MkdirTemp("", "tlspilot-asnobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "tlspilot")
	data, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, dir, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// TestStorageNotWritableSaysWho: certs run by a user who cannot write a
// storage made by root (no user key in the config) names the uid it runs
// as, the storage's owner and the fix, not a bare "permission denied".
func TestStorageNotWritableSaysWho(t *testing.T) {
	bin, dir, nobody := asNobody(t)
	storage := filepath.Join(dir, "storage")
	if err := os.MkdirAll(filepath.Join(storage, "data", "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "tlspilot.toml")
	writeFile(t, conf, fmt.Sprintf("storage = %q\nca = \"https://127.0.0.1:1/dir\"\nagree_terms = true\n\n[[certificate]]\nnames = [\"who.example.test\"]\nstandalone = \"127.0.0.1:0\"\nfullchain = %q\nprivkey = %q\n",
		storage, filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")))
	os.Chmod(conf, 0o644)
	cmd := exec.Command(bin, "certs", "--once", "--config", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("(this runs as uid %d, which belongs to uid 0: run this as that user, or give the storage to uid %[1]d (tlspilot init --user))", nobody.Uid)
	if err == nil || !strings.Contains(string(out), "tlspilot.toml:1: storage: ") || !strings.Contains(string(out), want) {
		t.Errorf("certs --once as nobody on root's storage: %v\n%s\nwant %q", err, out, want)
	}
}
