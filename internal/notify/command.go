package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/tlspilot/tlspilot/internal/procgroup"
)

// maxOutput bounds the output of a hook kept for the log.
const maxOutput = 4 << 10

// waitDelay bounds how long output is read after the command exited.
const waitDelay = 2 * time.Second

// command runs a program for each event.
type command struct {
	argv    []string
	timeout time.Duration
	log     *slog.Logger
	hide    []string // environment variables not passed on (Options.HideEnv)
}

func (c *command) kind() string { return "command" }

// deliver runs the program once, killing its process group when ctx or
// the timeout ends, and logs the outcome.
func (c *command) deliver(ctx context.Context, p Payload) {
	run, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	argv := append(append([]string{}, c.argv...), p.args()...)
	cmd := exec.CommandContext(run, argv[0], argv[1:]...)
	cmd.Env = p.environ(c.hide)
	procgroup.Own(cmd)
	start := time.Now()
	output, err := runBounded(cmd)
	attrs := []any{"hook", "command", "event", p.Event, "cert", p.CertID, "program", argv[0],
		"duration", time.Since(start).Round(time.Millisecond)}
	if cmd.ProcessState != nil {
		attrs = append(attrs, "exit_code", cmd.ProcessState.ExitCode())
	}
	attrs = append(attrs, "output", output)
	switch {
	case err == nil:
		c.log.Debug("notify command done", attrs...)
	case ctx.Err() != nil:
		c.log.Warn("notify command killed at shutdown", append(attrs, "error", err)...)
	case errors.Is(run.Err(), context.DeadlineExceeded):
		c.log.Error("notify command timed out: killed with its process group", append(attrs, "timeout", c.timeout, "error", err)...)
	default:
		c.log.Error("notify command failed", append(attrs, "error", err)...)
	}
}

// runBounded runs cmd with stdout and stderr on one pipe, of which it
// keeps the first maxOutput bytes. It returns when cmd has exited and its
// process group has been killed, without waiting for processes that left
// the group (they may hold the pipe open) longer than waitDelay. exec.Cmd
// would copy the output itself, but then Wait would also wait for such
// processes, for ever.
func runBounded(cmd *exec.Cmd) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("output pipe: %w", err)
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	_ = w.Close() // the child has its copy
	if err != nil {
		return "", err
	}
	out := &boundedBuffer{max: maxOutput}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(out, r)
	}()
	err = cmd.Wait()
	procgroup.Kill(cmd) // what it left running
	select {
	case <-copied:
	case <-time.After(waitDelay):
		_ = r.Close() // ends the copy
		<-copied
	}
	return out.String(), err
}

// boundedBuffer keeps the first max bytes written to it and counts the
// rest. One goroutine writes to it.
type boundedBuffer struct {
	max     int
	b       []byte
	dropped int
}

func (w *boundedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), w.max-len(w.b))
	w.b = append(w.b, p[:n]...)
	w.dropped += len(p) - n
	return len(p), nil
}

// String returns what was kept, with a note of what was not.
func (w *boundedBuffer) String() string {
	if w.dropped > 0 {
		return fmt.Sprintf("%s… (%d more bytes)", w.b, w.dropped)
	}
	return string(w.b)
}
