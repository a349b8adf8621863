package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runAsDirs returns a temporary directory that user nobody may search
// (with its parent), and in it a directory "private" that only root may
// search, holding an executable "hook".
func runAsDirs(t *testing.T) (dir, private string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: serve changes user only when started as root")
	}
	dir = t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	private = filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(private, "hook"), "#!/bin/sh\nexit 0\n")
	if err := os.Chmod(filepath.Join(private, "hook"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, private
}

// checkAsNobody runs check on a config for user nobody with one static
// site, extra written before the site, and returns its exit code and
// output.
func checkAsNobody(t *testing.T, dir, extra string) (int, string) {
	t.Helper()
	conf := filepath.Join(dir, "tlspilot.toml")
	write(t, conf, "user = \"nobody\"\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\n"+extra+
		"\n[[site]]\nnames = [\"notify.example.test\"]\n"+
		"cert_file = "+strconvQuote(filepath.Join(dir, "c.pem"))+"\nkey_file = "+strconvQuote(filepath.Join(dir, "k.pem"))+"\n")
	var out, errb bytes.Buffer
	code := checkCmd([]string{conf}, &out, &errb)
	return code, out.String() + errb.String()
}

// TestCheckNotifyCommandThroughSymlink: a notify_command reached through
// a symlink whose target lies in a directory the run-as user may not
// search cannot be executed by that user (exec follows the link and
// needs search permission on every directory of its target), yet check
// said OK: it looked only at the directories above the link. The same
// holds for any file check looks at for that user (a site's key file).
func TestCheckNotifyCommandThroughSymlink(t *testing.T) {
	dir, private := runAsDirs(t)
	link := filepath.Join(dir, "hook")
	if err := os.Symlink(filepath.Join(private, "hook"), link); err != nil {
		t.Fatal(err)
	}
	code, out := checkAsNobody(t, dir, "notify_command = ["+strconvQuote(link)+"]\n")
	if code == 0 || !strings.Contains(out, "notify_command: "+link+": permission denied: "+private) {
		t.Errorf("check with a hook reached through a link into a directory nobody cannot search: exit %d\n%s", code, out)
	}
	if err := os.Chmod(private, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out := checkAsNobody(t, dir, "notify_command = ["+strconvQuote(link)+"]\n"); code != 0 {
		t.Errorf("check with a hook nobody can run through a link: exit %d\n%s", code, out)
	}
}

// TestCheckSiteFileThroughSymlink: the same for a site's key file, a
// symlink (as certbot's live/ directory holds) into a directory the
// run-as user may not search: serve could not read it after dropping its
// privileges, yet check said OK.
func TestCheckSiteFileThroughSymlink(t *testing.T) {
	dir, private := runAsDirs(t)
	write(t, filepath.Join(private, "k.pem"), "not read by check\n")
	if err := os.Chmod(filepath.Join(private, "k.pem"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(private, "k.pem"), filepath.Join(dir, "k.pem")); err != nil {
		t.Fatal(err)
	}
	code, out := checkAsNobody(t, dir, "")
	if code == 0 || !strings.Contains(out, "key_file: permission denied: "+private) {
		t.Errorf("check with a key file reached through a link into a directory nobody cannot search: exit %d\n%s", code, out)
	}
}

// TestCheckDNSCommandRunnable: the [dns] exec provider's command runs as
// the user serve runs as, as notify_command does, yet check said OK to
// one that user may not execute: every dns-01 order then failed, seen
// only at the first issuance or renewal. check refuses it at its line.
func TestCheckDNSCommandRunnable(t *testing.T) {
	dir, private := runAsDirs(t)
	hook := filepath.Join(private, "hook")
	code, out := checkAsNobody(t, dir, "\n[dns]\nprovider = \"exec\"\ncommand = "+strconvQuote(hook)+"\n")
	if code == 0 || !strings.Contains(out, "tlspilot.toml:8: dns.command: "+hook+": permission denied: "+private) {
		t.Errorf("check with a dns command nobody cannot run: exit %d\n%s", code, out)
	}
	if err := os.Chmod(private, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, out := checkAsNobody(t, dir, "\n[dns]\nprovider = \"exec\"\ncommand = "+strconvQuote(hook)+"\n"); code != 0 {
		t.Errorf("check with a dns command nobody can run: exit %d\n%s", code, out)
	}
}

// TestServeNotifyCommandBySupplementaryGroup: serve started as its user
// by a supervisor that gives it a supplementary group (systemd's
// SupplementaryGroups=) may run a hook of mode 0750 owned by that group,
// yet serve logged at ERROR that every notification would fail: it
// judged from the primary group alone. Once serve runs as the user, it
// asks the kernel. Without that group, the ERROR is still logged.
func TestServeNotifyCommandBySupplementaryGroup(t *testing.T) {
	bin, dir, nobody := asNobody(t)
	const hooks = 4242
	hook := filepath.Join(dir, "hook")
	write(t, hook, "#!/bin/sh\nexit 0\n")
	if err := os.Chown(hook, 0, hooks); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(hook, 0o750); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "serve.toml")
	writeFile(t, conf, fmt.Sprintf("storage = %q\nhttp_listen = \"127.0.0.1:0\"\nhttps_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n"+
		"user = \"nobody\"\nca = \"https://127.0.0.1:1/dir\"\nnotify_command = [%q]\n\n[[site]]\nnames = [\"hookgroup.example.test\"]\n",
		filepath.Join(dir, "storage"), hook))
	if err := os.Chmod(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := serveUntilStorage(t, bin, conf, filepath.Join(dir, "storage"), nobody); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "notify_command: "+hook+": not executable") {
		t.Errorf("serve did not report at ERROR a hook nobody may not run:\n%s", out)
	}
	if err := os.RemoveAll(filepath.Join(dir, "storage")); err != nil {
		t.Fatal(err)
	}
	withGroup := *nobody
	withGroup.Groups = []uint32{hooks}
	if out := serveUntilStorage(t, bin, conf, filepath.Join(dir, "storage"), &withGroup); strings.Contains(out, "cannot be run") {
		t.Errorf("serve reported a hook its supplementary group may run as not runnable:\n%s", out)
	}
}

// serveUntilStorage starts serve with conf as cred, stops it once it has
// made its storage (after it checked the programs it runs), and returns
// what it logged.
func serveUntilStorage(t *testing.T, bin, conf, storage string, cred *syscall.Credential) string {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(storage, "kek")); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("serve did not start: %s", stderr.String())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-exited
	return stderr.String()
}

// setACL gives path a POSIX access ACL: owner rwx, user uid r-x, group
// and mask r-x, others nothing (as setfacl -m u:UID:rx path does on a
// 0750 file).
func setACL(t *testing.T, path string, uid uint32) {
	t.Helper()
	entry := func(tag, perm uint16, id uint32) []byte {
		return []byte{byte(tag), byte(tag >> 8), byte(perm), byte(perm >> 8), byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}
	}
	const undefined = 0xffffffff
	acl := []byte{2, 0, 0, 0}
	acl = append(acl, entry(0x01, 7, undefined)...) // owner
	acl = append(acl, entry(0x02, 5, uid)...)       // the user
	acl = append(acl, entry(0x04, 0, undefined)...) // owning group
	acl = append(acl, entry(0x10, 5, undefined)...) // mask
	acl = append(acl, entry(0x20, 0, undefined)...) // others
	if err := syscall.Setxattr(path, "system.posix_acl_access", acl, 0); err != nil {
		t.Fatalf("set an ACL on %s: %v", path, err)
	}
}

// TestCheckNotifyCommandACL: a hook that an ACL lets the run-as user
// execute (setfacl -m u:nobody:rx, mode 0750 owned by root) runs, yet
// check refused the config: it read the permission bits alone, whose
// group bits are then the ACL's mask. The same held for a site's files.
// Without the ACL entry the hook is still refused; an ACL whose entry
// for the user lacks x does not let it through by the mask.
func TestCheckNotifyCommandACL(t *testing.T) {
	dir, private := runAsDirs(t)
	if err := os.Chmod(private, 0o755); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(private, "hook")
	if err := os.Chmod(hook, 0o750); err != nil {
		t.Fatal(err)
	}
	if code, out := checkAsNobody(t, dir, "notify_command = ["+strconvQuote(hook)+"]\n"); code == 0 {
		t.Errorf("check with a hook of mode 0750 owned by root, no ACL: exit 0\n%s", out)
	}
	setACL(t, hook, 65534)
	if code, out := checkAsNobody(t, dir, "notify_command = ["+strconvQuote(hook)+"]\n"); code != 0 {
		t.Errorf("check with a hook an ACL lets nobody run: exit %d\n%s", code, out)
	}
	setACL(t, hook, 12345)
	if code, out := checkAsNobody(t, dir, "notify_command = ["+strconvQuote(hook)+"]\n"); code == 0 {
		t.Errorf("check with a hook whose ACL names another user: exit 0\n%s", out)
	}
}
