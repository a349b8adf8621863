package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/tlspilot/tlspilot/internal/config"
)

// logFile is a log written to a file that SIGUSR1 reopens (nginx's
// convention), so logrotate can move it away and signal, without
// copytruncate and the lines it loses.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &logFile{path: path, f: f}, nil
}

// Write writes p to the file open now.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// reopen opens the path again and closes the file it replaces. On
// failure the old file stays in use.
func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// logs are the daemon's own log and its access log (nil when off), and
// the files they write to.
type logs struct {
	log    *slog.Logger
	access *slog.Logger
	files  []*logFile
}

// openLogs opens the logs the config asks for: log_level, log_format and
// log_file for the daemon's log, access_log (JSON lines) for requests.
func openLogs(cfg *config.Config, stdout, stderr io.Writer) (*logs, error) {
	l := &logs{}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, cfg.Errorf("log_level", "%w", err)
	}
	w, err := l.dest(cfg.LogFile, stdout, stderr)
	if err != nil {
		return nil, cfg.Errorf("log_file", "%w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		opts.ReplaceAttr = durationString
		l.log = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		l.log = slog.New(slog.NewTextHandler(w, opts))
	}
	if cfg.AccessLog != "off" {
		w, err := l.dest(cfg.AccessLog, stdout, stderr)
		if err != nil {
			l.close()
			return nil, cfg.Errorf("access_log", "%w", err)
		}
		l.access = slog.New(slog.NewJSONHandler(w, nil))
	}
	return l, nil
}

// dest returns the writer for "stdout", "stderr" or a file path.
func (l *logs) dest(name string, stdout, stderr io.Writer) (io.Writer, error) {
	switch name {
	case "", "stdout":
		return stdout, nil
	case "stderr":
		return stderr, nil
	}
	f, err := openLogFile(name)
	if err != nil {
		return nil, err
	}
	l.files = append(l.files, f)
	return f, nil
}

// reopen reopens every log file.
func (l *logs) reopen() error {
	var errs []error
	for _, f := range l.files {
		if err := f.reopen(); err != nil {
			errs = append(errs, fmt.Errorf("reopen %s: %w", f.path, err))
		}
	}
	return errors.Join(errs...)
}

// reopenOn reopens the log files on every SIGUSR1 received on usr1
// until ctx ends.
func (l *logs) reopenOn(ctx context.Context, usr1 <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			if err := l.reopen(); err != nil {
				l.log.Error("SIGUSR1: log files not reopened, the old ones stay in use", "error", err)
			} else {
				l.log.Info("SIGUSR1: log files reopened", "files", len(l.files))
			}
		}
	}
}

func (l *logs) close() {
	for _, f := range l.files {
		_ = f.close()
	}
}

// durationString writes durations as "1m30s", not as a bare number of
// nanoseconds, in JSON logs: the value carries its unit.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
