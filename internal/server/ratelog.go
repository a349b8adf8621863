package server

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// rateLog lets through at most one message per interval and counts the
// ones it held back, reported with the next one let through: a flood of
// client errors or accept failures cannot flood the log.
type rateLog struct {
	log      *slog.Logger
	level    slog.Level
	interval time.Duration
	next     atomic.Int64 // unix nanoseconds before which messages are held back
	held     atomic.Int64
}

func newRateLog(log *slog.Logger, level slog.Level, interval time.Duration) *rateLog {
	return &rateLog{log: log, level: level, interval: interval}
}

// Log writes msg with attrs unless one was written less than interval
// ago.
func (l *rateLog) Log(msg string, attrs ...slog.Attr) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(l.interval)) {
		l.held.Add(1)
		return
	}
	if n := l.held.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	l.log.LogAttrs(context.Background(), l.level, msg, attrs...)
}
