package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// The two unprivileged users of the privilege-separated set-up, by
// number only (no entry in /etc/passwd is needed): certs does ACME, serve
// (or nginx) serves. The deployed private key is in serve's group.
const (
	certsID = 51001 // tlspilot-certs, uid and gid
	serveID = 51002 // tlspilot-serve, uid and gid
)

// account is a user to run a child process as.
type account struct {
	uid, gid uint32
	groups   []uint32
}

var (
	certsUser = account{uid: certsID, gid: certsID, groups: []uint32{certsID, serveID}}
	serveUser = account{uid: serveID, gid: serveID, groups: []uint32{serveID}}
)

// privsep is a certs set-up whose storage `tlspilot init --user` handed
// to certsUser.
type privsep struct {
	*certsEnv
	bin     string // the binary, where both users may run it
	storage string
}

func newPrivsep(t *testing.T) *privsep {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to run tlspilot as two other users")
	}
	ce := newCertsEnv(t)
	ps := &privsep{certsEnv: ce, bin: filepath.Join(ce.dir, "bin", "tlspilot"), storage: filepath.Join(ce.dir, "storage")}
	b, err := os.ReadFile(buildBinary(t)) // its folder is root's alone
	if err != nil {
		t.Fatal(err)
	}
	write(t, ps.bin, string(b))
	if err := os.Chmod(ps.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ps.fakeAdminTools(t)
	// The config names the deployed key's group, which must exist.
	addGroup(t, "tlspilot-serve", serveID)
	// The administrator gives the deploy folder to certs.
	if err := os.Chown(ce.live, certsID, certsID); err != nil {
		t.Fatal(err)
	}
	return ps
}

// fakeAdminTools puts, first in the PATH certs runs with, stand-ins for
// the tools that administer a web server, each recording that it ran:
// certs, whose config names no command, must run none.
func (ps *privsep) fakeAdminTools(t *testing.T) {
	t.Helper()
	ran := filepath.Join(ps.dir, "fakebin-ran")
	if err := os.MkdirAll(ran, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ran, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"systemctl", "service", "nginx", "apachectl", "apache2ctl", "postfix", "kill", "pkill", "sudo", "sh", "bash"} {
		p := filepath.Join(ps.dir, "fakebin", name)
		write(t, p, fmt.Sprintf("#!/bin/sh\necho \"$*\" > %q\nexit 1\n", filepath.Join(ran, name)))
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if ents, _ := os.ReadDir(ran); len(ents) != 0 {
			t.Errorf("certs ran commands its config does not name: %v", ents)
		}
	})
}

// addGroup creates the group gid, named name, unless it exists, and
// removes it at cleanup if it created it.
func addGroup(t *testing.T, name string, gid int) {
	t.Helper()
	if _, err := user.LookupGroupId(fmt.Sprint(gid)); err == nil {
		return
	}
	if out, err := exec.Command("groupadd", "-g", fmt.Sprint(gid), name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("groupdel", name).CombinedOutput(); err != nil {
			t.Errorf("groupdel: %v\n%s", err, out)
		}
	})
}

// configure writes the config: ce's certificate, its key readable by
// serve's group, and extra [[certificate]] tables.
func (ps *privsep) configure(extra string) string {
	return ps.config(fmt.Sprintf(`
[[certificate]]
names = ["privsep.example.test"]
challenge_dir = %q
fullchain = %q
privkey = %q
group = "%d"
mode = "0640"
`, ps.challenges, ps.fullchain, ps.privkey, serveID) + extra)
}

// run runs the binary as a, with no environment but PATH.
func (ps *privsep) run(a account, args ...string) (int, string, string) {
	ps.t.Helper()
	cmd := exec.Command(ps.bin, args...)
	cmd.Env = []string{"PATH=" + filepath.Join(ps.dir, "fakebin") + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		ps.t.Fatalf("run %v as uid %d: %v", args, a.uid, err)
	}
	return code, out.String(), errb.String()
}

// writable tries, as a, to open each path for writing (a file, opened
// to append and closed: nothing changes) or to create a file in it (a
// folder, removed at once), and returns the paths where it succeeded.
func writable(t *testing.T, a account, paths []string) []string {
	t.Helper()
	const script = `for p in "$@"; do
	if [ -d "$p" ]; then
		f=$(mktemp -p "$p" .privsep-XXXXXX 2>/dev/null) && { rm -f "$f"; echo "$p"; }
	elif (exec 3>>"$p") 2>/dev/null; then
		echo "$p"
	fi
done`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, paths...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("write probe as uid %d: %v", a.uid, err)
	}
	return strings.Fields(string(out))
}

// tree lists root and every folder and file below it.
func tree(t *testing.T, roots ...string) []string {
	t.Helper()
	var out []string
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSymlink == 0 {
				out = append(out, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// owner checks path's owner, group and mode.
func owner(t *testing.T, path string, uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	got := fi.Mode() & (fs.ModePerm | fs.ModeSticky)
	if int(st.Uid) != uid || int(st.Gid) != gid || got != mode {
		t.Errorf("%s: %d:%d %v, want %d:%d %v", path, st.Uid, st.Gid, got, uid, gid, mode)
	}
}

// TestPrivsep: the io7m set-up, run for real, with two uids. `tlspilot
// serve` starts first as the serving user (51002), with its own config,
// no storage and certificate files that do not exist yet. The
// administrator runs `tlspilot init --user` as root. certs, as its own
// user (51001), obtains from Pebble by http-01 (answers written to
// challenge_dir, served by serve) and deploys the key in the serving
// user's group; serve presents it by itself; an idle `--once` changes
// nothing; the daemon deploys a renewal. Then: the serving user can
// write nothing under the storage, challenge_dir or the deploy folder;
// the certs user cannot write the KEK or the account, nor move the
// account away, and creates neither when missing; certs runs no command
// its config does not name; a deploy target certs may not write is an
// error naming the path, the permission and the uid, with the previous
// files intact and no mode widened; a deactivated account that certs may
// not replace fails with an error that sends the administrator to
// `tlspilot init`, writing nothing, and after `tlspilot init --user`
// certs orders again.
func TestPrivsep(t *testing.T) {
	ps := newPrivsep(t)
	srv := ps.startServe(t)
	conf := ps.configure("")

	code, out, errOut := runBinary(t, "init", "--config", conf, "--user", fmt.Sprint(certsID), "--group", fmt.Sprint(certsID))
	if code != 0 {
		t.Fatalf("init --user: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("init --user:\n%s", out)
	if !strings.Contains(out, fmt.Sprintf("deploy directory %s: writable by %d", ps.live, certsID)) {
		t.Errorf("init does not report the deploy directory writable")
	}
	kek, data := filepath.Join(ps.storage, "kek"), filepath.Join(ps.storage, "data")
	accounts := filepath.Join(data, "accounts")
	owner(t, ps.storage, 0, certsID, 0o750)
	owner(t, kek, 0, certsID, 0o440)
	owner(t, data, 0, certsID, fs.ModeSticky|0o770)
	owner(t, ps.challenges, certsID, certsID, 0o755)
	for _, p := range tree(t, accounts) {
		if fi, _ := os.Stat(p); !fi.IsDir() {
			owner(t, p, 0, certsID, 0o440)
		}
	}

	if code, out, errOut := ps.run(certsUser, "check", "--config", conf); code != 0 {
		t.Errorf("check as uid %d: exit %d\n%s%s", certsID, code, out, errOut)
	}
	code, out, errOut = ps.run(certsUser, "certs", "--once", "--config", conf)
	if code != tlspilot.ExitOK {
		t.Fatalf("certs --once as uid %d: exit %d\n%s%s", certsID, code, out, errOut)
	}
	owner(t, ps.privkey, certsID, serveID, 0o640)
	c, _ := deployed(t, conf)
	srv.waitSerial(t, c.Serial, ps.roots)
	ps.checkIdleRun(t, conf)
	ps.checkDaemon(t, conf, srv, c.Serial)
	ps.checkBoundaries(t)
	ps.checkNothingCreated(t, conf)
	ps.checkDeployDenied(t)
	ps.checkDeactivated(t, conf)
}

// checkBoundaries probes, as each user, what it may write.
func (ps *privsep) checkBoundaries(t *testing.T) {
	t.Helper()
	all := tree(t, ps.storage, ps.challenges, ps.live)
	if got := writable(t, serveUser, all); len(got) != 0 {
		t.Errorf("the serving user (uid %d) may write %d of %d paths: %v", serveID, len(got), len(all), got)
	}
	kept := append([]string{ps.storage, filepath.Join(ps.storage, "kek")}, tree(t, filepath.Join(ps.storage, "data", "accounts"))...)
	if got := writable(t, certsUser, kept); len(got) != 0 {
		t.Errorf("the certs user (uid %d) may write the KEK or the account: %v", certsID, got)
	}
	// Not a vacuous probe: certs may write its own folders.
	own := []string{ps.challenges, ps.live, ps.fullchain, filepath.Join(ps.storage, "data", "certs"), filepath.Join(ps.storage, "locks")}
	if got := writable(t, certsUser, own); len(got) != len(own) {
		t.Errorf("the certs user may write only %v of %v", got, own)
	}
	accounts := filepath.Join(ps.storage, "data", "accounts")
	mv := exec.Command("mv", accounts, accounts+".moved")
	mv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: certsID, Gid: certsID}}
	if out, err := mv.CombinedOutput(); err == nil {
		t.Errorf("the certs user moved the accounts folder away: %s", out)
		_ = os.Rename(accounts+".moved", accounts)
	}
	for _, p := range all {
		if fi, err := os.Lstat(p); err == nil && fi.Sys().(*syscall.Stat_t).Uid == serveID {
			t.Errorf("%s belongs to the serving user: serve wrote it", p)
		}
	}
	t.Logf("%d paths probed: the serving user may write none; the certs user none of the KEK and account, all of its own", len(all))
}

// served is `tlspilot serve` running as serveUser.
type served struct {
	https string
	log   *syncBuffer
}

// startServe starts `tlspilot serve` as serveUser, first, as in the io7m
// set-up: its own config with no storage, the site's certificate from
// the files certs will deploy (not there yet), http-01 answered from the
// challenge directory certs writes, on Pebble's validation port. It stops
// serve at cleanup.
func (ps *privsep) startServe(t *testing.T) *served {
	t.Helper()
	s := &served{https: freeAddr(t), log: &syncBuffer{}}
	conf := filepath.Join(ps.dir, "serve.toml")
	write(t, conf, fmt.Sprintf(`http_listen = %q
https_listen = %q
access_log = "off"
challenge_dir = %q

[[site]]
names = ["privsep.example.test"]
root = %q
cert_file = %q
key_file = %q
`, ps.http, s.https, ps.challenges, filepath.Join(ps.dir, "www"), ps.fullchain, ps.privkey))
	cmd := exec.Command(ps.bin, "serve", "--config", conf)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: serveUser.uid, Gid: serveUser.gid, Groups: serveUser.groups}}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("serve output:\n%s", s.log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.https, &tls.Config{ServerName: "privsep.example.test", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve does not listen on %s: %v\n%s", s.https, err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if uid := procUID(t, cmd.Process.Pid); uid != fmt.Sprint(serveID) {
		t.Errorf("serve runs as uid %s, want %d", uid, serveID)
	}
	return s
}

// waitSerial waits until serve presents the certificate with serial,
// verified against roots, picked up from the deployed files by itself.
func (s *served) waitSerial(t *testing.T, serial string, roots *x509.CertPool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.https, &tls.Config{ServerName: "privsep.example.test", RootCAs: roots})
		got := ""
		if err == nil {
			got = c.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
			c.Close()
		}
		if got == serial {
			t.Logf("serve, as uid %d, presents serial %s from the deployed files", serveID, serial)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve presents serial %q (%v), want %s\n%s", got, err, serial, s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkIdleRun: `certs --once` with nothing due, as a timer runs it
// hourly, changes no file (an intrusion detection system sees the
// certificates change only when they are renewed) and asks the CA
// nothing.
func (ps *privsep) checkIdleRun(t *testing.T, conf string) {
	t.Helper()
	state := func() string {
		var b strings.Builder
		for _, p := range tree(t, ps.storage, ps.challenges, ps.live) {
			fi, err := os.Lstat(p)
			if err == nil && !fi.IsDir() {
				fmt.Fprintf(&b, "%s %v %v %d\n", p, fi.Mode(), fi.ModTime(), fi.Sys().(*syscall.Stat_t).Ino)
			}
		}
		return b.String()
	}
	before, requests := state(), ps.p.Requests()
	if code, out, errOut := ps.run(certsUser, "certs", "--once", "--config", conf); code != tlspilot.ExitOK {
		t.Fatalf("certs --once with nothing due: exit %d\n%s%s", code, out, errOut)
	}
	if after := state(); after != before {
		t.Errorf("certs --once with nothing due changed files:\n%s\nthen:\n%s", before, after)
	}
	if n := ps.p.Requests() - requests; n != 0 {
		t.Errorf("certs --once with nothing due sent %d requests to the CA", n)
	}
}

// checkDaemon: `certs` as a daemon under the certs user deploys a
// certificate that `renew --force`, run as that user too, stored, and
// serve presents it by itself.
func (ps *privsep) checkDaemon(t *testing.T, conf string, srv *served, serial string) {
	t.Helper()
	cmd := exec.Command(ps.bin, "certs", "--config", conf)
	cmd.Env = []string{"PATH=" + filepath.Join(ps.dir, "fakebin") + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: certsUser.uid, Gid: certsUser.gid, Groups: certsUser.groups}}
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil || t.Failed() {
			t.Errorf("certs daemon: %v\n%s", err, log.String())
		}
	}()
	waitCount(t, log, "keeping certificates", 1)
	if code, out, errOut := ps.run(certsUser, "renew", "--force", "--config", conf); code != 0 {
		t.Fatalf("renew --force as uid %d: exit %d\n%s%s", certsID, code, out, errOut)
	}
	waitCount(t, log, "certificate deployed", 1)
	c, _ := deployed(t, conf)
	if c.Serial == serial || c.Deploy.Serial != c.Serial {
		t.Fatalf("after renew --force: serial %s (was %s), deployed %s", c.Serial, serial, c.Deploy.Serial)
	}
	srv.waitSerial(t, c.Serial, ps.roots)
}

// checkNothingCreated: certs never creates what init creates. Without
// the KEK, or for a contact with no account, it fails saying so, and
// creates no KEK and no account. A storage whose keys are sealed under
// a KEK gets no new one, which would open none of them: the error says
// to restore the file.
func (ps *privsep) checkNothingCreated(t *testing.T, conf string) {
	t.Helper()
	kek := filepath.Join(ps.storage, "kek")
	if err := os.Rename(kek, kek+".away"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := ps.run(certsUser, "certs", "--once", "--config", conf)
	if code != tlspilot.ExitUnknown || !strings.Contains(errOut, "key-encryption key file is missing") || !strings.Contains(errOut, "restore that file") {
		t.Errorf("certs --once without the KEK: exit %d, want %d and an error saying to restore the KEK file\n%s%s", code, tlspilot.ExitUnknown, out, errOut)
	}
	if _, err := os.Lstat(kek); err == nil {
		t.Error("certs created a KEK")
	}
	if err := os.Rename(kek+".away", kek); err != nil {
		t.Fatal(err)
	}
	t.Logf("no KEK: %s", strings.TrimSpace(errOut))

	accounts := filepath.Join(ps.storage, "data", "accounts")
	before := readTree(t, accounts)
	other := strings.Replace(readFile(t, conf), `email = "ops@example.test"`, `email = "other@example.test"`, 1)
	otherConf := filepath.Join(ps.dir, "other.toml")
	write(t, otherConf, other)
	code, out, errOut = ps.run(certsUser, "renew", "--force", "--config", otherConf)
	if code == 0 || !strings.Contains(out+errOut, "no ACME account") || !strings.Contains(out+errOut, "tlspilot init") {
		t.Errorf("renew for a contact with no account: exit %d, want an error pointing to tlspilot init\n%s%s", code, out, errOut)
	}
	if after := readTree(t, accounts); len(after) != len(before) {
		t.Errorf("certs created account files: %v", mapKeys(after))
	}
}

// checkDeployDenied adds a certificate whose deploy folder certs may not
// write, holding earlier files.
func (ps *privsep) checkDeployDenied(t *testing.T) {
	t.Helper()
	denied := filepath.Join(ps.dir, "live", "denied")
	fullchain, privkey := filepath.Join(denied, "fullchain.pem"), filepath.Join(denied, "privkey.pem")
	if err := os.MkdirAll(denied, 0o755); err != nil {
		t.Fatal(err)
	}
	placeholder(t, fullchain, privkey)
	if err := os.Chown(privkey, 0, serveID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(privkey, 0o640); err != nil {
		t.Fatal(err)
	}
	before := tree(t, denied)
	snap := func() string {
		var b strings.Builder
		for _, p := range before {
			fi, _ := os.Stat(p)
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %v %x\n", p, fi.Mode(), c)
		}
		return b.String()
	}
	was := snap()
	conf := ps.configure(fmt.Sprintf(`
[[certificate]]
names = ["denied.example.test"]
challenge_dir = %q
fullchain = %q
privkey = %q
`, ps.challenges, fullchain, privkey))
	code, out, errOut := ps.run(certsUser, "certs", "--once", "--config", conf)
	want := fmt.Sprintf("deploy %s: permission denied: needs write and search permission on the directory %s (tlspilot runs as uid %d gid %d)",
		fullchain, denied, certsID, certsID)
	if code != tlspilot.ExitCritical || !strings.Contains(out+errOut, want) {
		t.Errorf("certs --once with a deploy folder it may not write: exit %d, want %d and %q\n%s%s", code, tlspilot.ExitCritical, want, out, errOut)
	}
	if now := snap(); now != was {
		t.Errorf("the previous files changed:\n%s\nnow:\n%s", was, now)
	}
	owner(t, denied, 0, 0, 0o755)
	t.Logf("deploy denied: %s", grepLines(out, "deploy error"))
}

// checkDeactivated deactivates the account at the CA: certs, which may
// not replace it, fails saying so and writes nothing; the administrator's
// `tlspilot init --user` replaces it, and certs orders again.
func (ps *privsep) checkDeactivated(t *testing.T, conf string) {
	t.Helper()
	accounts := filepath.Join(ps.storage, "data", "accounts")
	old := deactivateStored(t, ps.env, ps.storage)
	before := readTree(t, accounts)
	code, out, errOut := ps.run(certsUser, "renew", "--force", "--config", conf)
	if code == 0 || !strings.Contains(out+errOut, "deactivated") || !strings.Contains(out+errOut, "tlspilot init") ||
		!strings.Contains(out+errOut, "read-only") {
		t.Errorf("renew --force with a deactivated, read-only account: exit %d\n%s%s", code, out, errOut)
	}
	after := readTree(t, accounts)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the account files changed: %v, then %v", mapKeys(before), mapKeys(after))
	}
	t.Logf("deactivated account, certs: %s", grepLines(out+errOut, "deactivated"))

	// The administrator forgets --user: the account is replaced, and init
	// warns that the new files are root's alone until it runs with --user.
	code, out, errOut = runBinary(t, "init", "--config", conf)
	warn := fmt.Sprintf("WARNING: the storage was handed over to uid %[1]d: run `tlspilot init --config %[2]s --user %[1]d --group %[3]d`", certsID, conf, certsID)
	if code != 0 || !strings.Contains(out, old+" was no longer usable; registered") || !strings.Contains(out, warn) {
		t.Fatalf("init after deactivation: exit %d, want the account replaced and %q\n%s%s", code, warn, out, errOut)
	}
	code, out, errOut = runBinary(t, "init", "--config", conf, "--user", fmt.Sprint(certsID), "--group", fmt.Sprint(certsID))
	if code != 0 || !strings.Contains(out, "exists, valid at the CA, kept") {
		t.Fatalf("init --user after the replacement: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := ps.run(certsUser, "renew", "--force", "--config", conf); code != 0 {
		t.Errorf("renew --force after init: exit %d\n%s%s", code, out, errOut)
	}
	retired := 0
	for p := range readTree(t, accounts) {
		if strings.Contains(p, "/retired/") {
			retired++
			owner(t, p, 0, certsID, 0o440)
		}
	}
	if retired != 1 {
		t.Errorf("%d retired account keys, want 1", retired)
	}
}

// deactivateStored deactivates, as the account's holder, the account
// stored in storage, and returns its URL.
func deactivateStored(t *testing.T, e *env, storage string) string {
	t.Helper()
	ctx := context.Background()
	sealer, err := keys.LoadOrCreateSealer(filepath.Join(storage, "kek"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := fsstore.New(fsstore.Options{Dir: storage, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	cs := certstore.New(st, sealer)
	id := certstore.AccountID(e.p.DirectoryURL, []string{"mailto:ops@example.test"})
	key, err := cs.LoadAccountKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := cs.LoadAccount(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.p.RootsPEM)
	c, err := acmeclient.New(acmeclient.Config{Directory: e.p.DirectoryURL, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeactivateAccount(ctx, acmeclient.Account{URL: rec.URL, Key: key}); err != nil {
		t.Fatal(err)
	}
	return rec.URL
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
