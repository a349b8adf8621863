// Package exec is a dns01.Provider that runs an external program for each
// record, so that any DNS API can be reached with a small script:
//
//	COMMAND present <fqdn> <value>
//	COMMAND cleanup <fqdn> <value>
//
// fqdn is the absolute name with its trailing dot
// ("_acme-challenge.example.com.", or the end of its CNAME chain) and value
// the TXT value. The program runs with tlspilot's environment plus
// TLSPILOT_DNS_ZONE, the record's zone with its trailing dot. It is run
// directly, not through a shell.
//
// present must add the value and keep the other TXT values at the name (a
// wildcard and its base name share it), and succeed if the value is there
// already; cleanup must remove that value only and succeed if it is
// absent. Exit status 0 means done; anything else fails the call, with the
// end of the program's standard error in the error. Runs are never
// concurrent: one at a time, in order, each killed after Timeout. Each
// run has its own process group (on Unix), killed when the run ends: at
// Timeout, and after the program exited, so that nothing it started in the
// background outlives it. A program that exits 0 while a process it
// started still holds its standard error open succeeds (with a warning in
// the log) once that output has been waited for a second. The
// program need not wait until the record is visible: tlspilot checks the
// authoritative servers itself.
package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/cmdoutput"
	"github.com/tlspilot/tlspilot/internal/procgroup"
)

// maxStderr bounds the standard error kept for an error message.
const maxStderr = 2048

// waitDelay bounds how long the program's standard error is read after it
// exited: a process it left running may hold it open.
const waitDelay = time.Second

// Options configures a Provider.
type Options struct {
	// Command is the program: an absolute path, or a name looked up in
	// PATH. Required.
	Command string
	// Timeout bounds one run of the program. Default 60s.
	Timeout time.Duration
	// Log receives warnings about runs that succeeded. Nil discards them.
	Log *slog.Logger
}

// Provider runs a program to add and remove TXT records. It is safe for
// concurrent use; runs are serialised.
type Provider struct {
	command string
	timeout time.Duration
	log     *slog.Logger
	mu      sync.Mutex // one run at a time
}

// New checks that opts.Command exists and is executable.
func New(opts Options) (*Provider, error) {
	if opts.Command == "" {
		return nil, errors.New("exec: no command")
	}
	path, err := osexec.LookPath(opts.Command)
	if err != nil {
		return nil, fmt.Errorf("exec: command %s: %w", opts.Command, err)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("exec: command %s: %w", opts.Command, err)
	}
	p := &Provider{command: path, timeout: opts.Timeout, log: opts.Log}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.timeout <= 0 {
		p.timeout = 60 * time.Second
	}
	return p, nil
}

// Present runs "COMMAND present <fqdn> <value>" for each record, stopping
// at the first failure.
func (p *Provider) Present(ctx context.Context, recs []dns01.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range recs {
		if err := p.run(ctx, "present", r); err != nil {
			if i > 0 {
				err.unchanged = false // earlier runs changed records
			}
			return err
		}
	}
	return nil
}

// CleanUp runs "COMMAND cleanup <fqdn> <value>" for each record, and
// reports every failure.
func (p *Provider) CleanUp(ctx context.Context, recs []dns01.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, r := range recs {
		if err := p.run(ctx, "cleanup", r); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// run runs the program once, in its own process group, which is killed
// when the run ends: at the timeout or ctx's end while the program runs,
// and after it exited, so that nothing it started outlives it.
func (p *Provider) run(ctx context.Context, action string, r dns01.Record) *runError {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, p.command, action, r.FQDN, r.Value)
	cmd.Env = append(os.Environ(), "TLSPILOT_DNS_ZONE="+r.Zone)
	stderr := &cmdoutput.Tail{Max: maxStderr}
	cmd.Stderr = stderr
	cmd.WaitDelay = waitDelay
	procgroup.Own(cmd)
	err := cmd.Run()
	if cmd.Process != nil {
		procgroup.Kill(cmd) // what it left running
	}
	if errors.Is(err, osexec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Exit status 0: the hook did its work, but left a process that
		// holds its standard error open, which Wait stopped waiting for.
		p.log.Warn("dns-01 hook exited 0 but left a process holding its standard error open; its process group was killed",
			"program", p.command, "action", action, "fqdn", r.FQDN)
		err = nil
	}
	if err == nil {
		return nil
	}
	e := &runError{command: p.command, action: action, fqdn: r.FQDN, zone: r.Zone, err: err,
		stderr: strings.TrimSpace(stderr.String())}
	var exitErr *osexec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded && (cmd.ProcessState == nil || !cmd.ProcessState.Exited()):
		// Killed by the deadline, not exited on its own with standard
		// error held past it by a child.
		e.err = fmt.Errorf("killed after %v, with its process group: %w", p.timeout, err)
	case !errors.As(err, &exitErr) && cmd.ProcessState == nil:
		e.unchanged = true // it did not start
	}
	return e
}

// runError is a failed run of the program.
type runError struct {
	command, action, fqdn, zone string
	stderr                      string
	err                         error
	unchanged                   bool
}

func (e *runError) Error() string {
	msg := fmt.Sprintf("exec: %s %s %s (zone %s): %v", e.command, e.action, e.fqdn,
		strings.TrimSuffix(e.zone, "."), e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *runError) Unwrap() []error {
	if e.unchanged {
		return []error{e.err, dns01.ErrUnchanged}
	}
	return []error{e.err}
}

var _ dns01.Provider = (*Provider)(nil)
