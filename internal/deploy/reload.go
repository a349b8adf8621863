package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tlspilot/tlspilot/internal/cmdoutput"
	"github.com/tlspilot/tlspilot/internal/procgroup"
)

// Reload makes the software read the files again: it runs the reload
// command (bounded by the timeout; its process group is killed then) or
// sends the signal to the process in the pidfile. Without either it does
// nothing. The error carries the command's output.
func (f *Files) Reload(ctx context.Context) error {
	switch {
	case len(f.opts.Reload) > 0:
		return f.runReload(ctx)
	case f.opts.PIDFile != "":
		return f.signal()
	}
	return nil
}

// Reloads reports whether Reload does anything: a reload command or a
// signal is configured.
func (f *Files) Reloads() bool { return len(f.opts.Reload) > 0 || f.opts.PIDFile != "" }

// runReload runs the reload command, without a shell.
func (f *Files) runReload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.opts.ReloadTimeout)
	defer cancel()
	argv := f.opts.Reload
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(f.opts.HideEnv) > 0 {
		for _, kv := range os.Environ() {
			if name, _, _ := strings.Cut(kv, "="); !slices.Contains(f.opts.HideEnv, name) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
	}
	// Only the end of the output is kept, for the error: a command may
	// write without end.
	out := &cmdoutput.Tail{Max: 2 * maxTail}
	cmd.Stdout, cmd.Stderr = out, out
	procgroup.Own(cmd)
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// It exited 0, leaving a process that holds its output open: a
		// daemon an init script's "restart" started. Its work is done,
		// and that process is the software itself, so it is not killed.
		f.log.Warn("reload command exited 0 but left a process holding its output open; that process gets SIGPIPE if it writes there (redirect its output)", "command", argv)
		err = nil
	}
	// Timed out only if the deadline stopped it: one that exited on its
	// own (its output held past the deadline by a daemon) said how it went.
	if ctx.Err() == context.DeadlineExceeded && (cmd.ProcessState == nil || !cmd.ProcessState.Exited()) {
		err = fmt.Errorf("timed out after %s", f.opts.ReloadTimeout)
	}
	if err != nil {
		return fmt.Errorf("reload %s: %w%s", strings.Join(argv, " "), err, tail(out.String()))
	}
	f.log.Info("reloaded", "command", argv, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// maxTail is how much of a command's output an error carries, at most,
// in bytes: its end.
const maxTail = 500

// tail formats the last part of a command's output for an error.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) == 0 {
		return ""
	}
	if len(s) > maxTail {
		s = strings.ToValidUTF8(s[len(s)-maxTail:], "")
	}
	return ": " + s
}

// signal sends the signal to the process whose id the pidfile holds.
func (f *Files) signal() error {
	pid, st, err := readPIDFile(f.opts.PIDFile)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	err = signalChecked(pid, f.opts.Signal, func() error { return processOf(pid, st, f.opts.PIDFile) })
	if errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("reload: signal %s to process %d (pidfile %s): permission denied: needs the same user as that process, or CAP_KILL: %w", f.opts.Signal, pid, f.opts.PIDFile, err)
	}
	if err != nil {
		return fmt.Errorf("reload: signal %s to process %d (pidfile %s): %w", f.opts.Signal, pid, f.opts.PIDFile, err)
	}
	f.log.Info("reloaded", "signal", f.opts.Signal.String(), "pid", pid)
	return nil
}

// signalChecked sends sig to process pid if check, which looks the
// process up by its id, passes. The process is held (a pidfd on Linux)
// before the check: should it end and its id go to another process
// between the check and the signal (a service user who wrote its own pid
// in its pidfile could time that), the signal fails instead of reaching
// a process the check never saw.
func signalChecked(pid int, sig syscall.Signal, check func() error) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	defer p.Release()
	if err := check(); err != nil {
		return err
	}
	return p.Signal(sig)
}

// readPIDFile returns the process id on the first line of the pidfile at
// path (PostgreSQL's postmaster.pid has more lines after it). The file
// is read as openDir and openExisting read a deploy path: through no
// symbolic link of another user's, and not through one at all at the
// end. It also returns the pidfile's stat, for processOf.
func readPIDFile(path string) (pid int, st *syscall.Stat_t, err error) {
	dir, err := openDir(filepath.Dir(path))
	if err != nil {
		return 0, nil, fmt.Errorf("read pidfile: %w", err)
	}
	defer dir.Close()
	cur, err := openExisting(dir, path)
	if err == nil && cur == nil {
		err = fmt.Errorf("%s: missing, or not a regular file of its own", path)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read pidfile: %w", err)
	}
	defer cur.close()
	b, err := io.ReadAll(io.LimitReader(cur.f, 4096))
	if err != nil {
		return 0, nil, fmt.Errorf("read pidfile: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 1 {
		return 0, nil, fmt.Errorf("pidfile %s holds no process id: %q", path, strings.TrimSpace(line))
	}
	return pid, cur.st, nil
}

// processOf checks that whoever may write the pidfile at path, of stat
// st, could send process pid a signal itself: a pidfile that belongs to
// another user than root and tlspilot's (postmaster.pid is postgres's)
// may only name a process of that user (its real or saved uid, as
// kill(2) asks of an unprivileged sender), and one that others or
// another group than root's and tlspilot's may write (a daemon started
// with umask 0 leaves it 0666) is refused. Whoever writes it could
// otherwise name any process and have tlspilot, as root, send the signal
// to sshd or anything else.
func processOf(pid int, st *syscall.Stat_t, path string) error {
	perm := st.Mode & 0o777
	if perm&0o002 != 0 || perm&0o020 != 0 && st.Gid != 0 && int(st.Gid) != os.Getegid() {
		return fmt.Errorf("pidfile %s is writable by others than its owner (mode %04o, group %d): not signalled, "+
			"as any of them could name any process (chmod go-w %s)", path, perm, st.Gid, path)
	}
	uid := st.Uid
	if uid == 0 || int(uid) == os.Geteuid() {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fmt.Errorf("pidfile %s: process %d: %w", path, pid, err)
	}
	var real, eff, saved uint32
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			_, _ = fmt.Sscan(rest, &real, &eff, &saved)
		}
	}
	if real != uid && saved != uid {
		return fmt.Errorf("pidfile %s belongs to uid %d, but process %d runs as uid %d: not signalled, as the pidfile's owner could name any process",
			path, uid, pid, real)
	}
	return nil
}

// ParseSignal parses a signal name as written in the config: "HUP" or
// "SIGHUP", and the other signals a server may reload on (USR1, USR2,
// INT, TERM, QUIT, WINCH).
func ParseSignal(s string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "SIG") {
	case "HUP":
		return syscall.SIGHUP, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	case "INT":
		return syscall.SIGINT, nil
	case "TERM":
		return syscall.SIGTERM, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	case "WINCH":
		return syscall.SIGWINCH, nil
	}
	return 0, fmt.Errorf("unknown signal %q (want HUP, USR1, USR2, INT, TERM, QUIT or WINCH)", s)
}
