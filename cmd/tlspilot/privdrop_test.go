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
	want := fmt.Sprintf("(this runs as uid %d; %s belongs to uid 0: run this as that user, or give it to uid %[1]d, as tlspilot init --user does for the storage)", nobody.Uid, storage)
	if err == nil || !strings.Contains(string(out), "tlspilot.toml:1: storage: ") || !strings.Contains(string(out), want) {
		t.Errorf("certs --once as nobody on root's storage: %v\n%s\nwant %q", err, out, want)
	}
}

// TestKEKFileNotReadableSaysWho: a kek_file the user running certs may
// not read (root's, 0600, outside a storage that user owns) is reported
// at kek_file, naming the file's owner. Found by review: the hint named
// the storage's owner, which was the very user refused ("this runs as uid
// 65534, which belongs to uid 65534"), at the storage line.
func TestKEKFileNotReadableSaysWho(t *testing.T) {
	bin, dir, nobody := asNobody(t)
	storage := filepath.Join(dir, "storage")
	conf := filepath.Join(dir, "tlspilot.toml")
	text := fmt.Sprintf("storage = %q\nca = \"https://127.0.0.1:1/dir\"\nagree_terms = true\n\n[[certificate]]\nnames = [\"own.example.test\"]\nstandalone = \"127.0.0.1:0\"\nfullchain = %q\nprivkey = %q\n",
		storage, filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem"))
	writeFile(t, conf, text)
	os.Chmod(conf, 0o644)
	run := func() string {
		cmd := exec.Command(bin, "certs", "--once", "--config", conf)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	first := run() // nobody creates its storage and KEK; the order fails (no CA)
	kek, err := os.ReadFile(filepath.Join(storage, "kek"))
	if err != nil {
		t.Fatalf("no KEK after the first run: %v\n%s", err, first)
	}
	rootKEK := filepath.Join(dir, "kek-root")
	if err := os.WriteFile(rootKEK, kek, 0o600); err != nil { // root's, 0600
		t.Fatal(err)
	}
	writeFile(t, conf, fmt.Sprintf("kek_file = %q\n", rootKEK)+text)
	os.Chmod(conf, 0o644)
	out := run()
	self := fmt.Sprintf("this runs as uid %d, which belongs to uid %[1]d", nobody.Uid)
	if !strings.Contains(out, "permission denied") {
		t.Fatalf("no permission error:\n%s", out)
	}
	if strings.Contains(out, self) {
		t.Errorf("the hint says the storage belongs to the very uid that cannot read kek_file:\n%s", out)
	}
	if want := "tlspilot.toml:1: kek_file: "; !strings.Contains(out, want) || !strings.Contains(out, rootKEK+" belongs to uid 0") {
		t.Errorf("want the error at kek_file, naming %s's owner:\n%s", rootKEK, out)
	}
}

// TestServeStartedAsTheUserOtherGroup: serve started as the configured
// user but not the configured group says that the group is what differs.
// Found by review: it said "cannot switch to nobody", the user it
// already was, and named no group.
func TestServeStartedAsTheUserOtherGroup(t *testing.T) {
	bin, dir, nobody := asNobody(t)
	conf := filepath.Join(dir, "grp.toml")
	writeFile(t, conf, fmt.Sprintf("storage = %q\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nuser = \"nobody\"\ngroup = \"daemon\"\nca = \"https://127.0.0.1:1/dir\"\n\n[[site]]\nnames = [\"grp.example.test\"]\n", filepath.Join(dir, "grp")))
	os.Chmod(conf, 0o644)
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-t.Context().Done():
	}
	if err == nil {
		t.Fatalf("serve as nobody:nogroup with group = \"daemon\" ran: %s", out)
	}
	if strings.Contains(string(out), "cannot switch to nobody:") || !strings.Contains(string(out), "daemon") {
		t.Errorf("error does not say the group is what differs:\n%s", out)
	}
}
