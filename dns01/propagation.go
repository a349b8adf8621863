package dns01

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// nsCacheTTL is how long the name servers of a zone are remembered.
const nsCacheTTL = time.Minute

// Checker finds where challenge records go and waits until every
// authoritative server of their zone serves them. All the records being
// watched are checked together, in rounds: one question per name and
// server, whatever the number of orders they belong to. Its methods are
// safe for concurrent use.
type Checker struct {
	resolvers []string
	port      int
	timeout   time.Duration
	interval  time.Duration
	zone      string
	log       *slog.Logger
	sem       chan struct{} // bounds the questions in flight

	mu      sync.Mutex
	watches map[Record]*watch
	ns      map[string]nsEntry // zone → its name servers
	running bool
	wake    chan struct{}
	lastLog Waiting
}

// watch is a record being checked.
type watch struct {
	refs  int
	added time.Time
	seen  map[string]bool   // name server → serves the record
	why   map[string]string // name server → why not, from the last round
	done  chan struct{}     // closed when served everywhere or failed
	err   error             // set before done is closed
}

type nsEntry struct {
	servers []nameserver
	at      time.Time
}

// NewChecker returns a Checker for opts; log may be nil. It does no I/O
// beyond reading /etc/resolv.conf when opts names no resolvers.
func NewChecker(opts PropagationOptions, log *slog.Logger) (*Checker, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{
		port: opts.AuthoritativePort, timeout: opts.Timeout, interval: opts.Interval, log: log,
		sem: make(chan struct{}, 16), watches: make(map[Record]*watch), ns: make(map[string]nsEntry),
		wake: make(chan struct{}, 1),
	}
	var err error
	if len(opts.Resolvers) == 0 {
		c.resolvers, err = systemResolvers()
	} else {
		c.resolvers, err = normalizeServers(opts.Resolvers, "53")
	}
	if err != nil {
		return nil, fmt.Errorf("dns01: resolvers: %w", err)
	}
	if len(c.resolvers) == 0 {
		return nil, fmt.Errorf("dns01: no resolvers")
	}
	if c.port == 0 {
		c.port = 53
	}
	if c.port < 0 || c.port > 65535 {
		return nil, fmt.Errorf("dns01: authoritative port %d out of range", c.port)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultPropagationTimeout
	}
	if c.interval <= 0 {
		c.interval = DefaultInterval
	}
	if opts.Zone != "" {
		c.zone = strings.ToLower(strings.TrimSuffix(opts.Zone, ".") + ".")
	}
	return c, nil
}

// Watch starts checking r at once, if it is not watched already, for at
// most the propagation timeout. Every Watch needs a Forget.
func (c *Checker) Watch(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watchLocked(r)
}

func (c *Checker) watchLocked(r Record) *watch {
	w := c.watches[r]
	if w == nil {
		w = &watch{added: time.Now(), seen: make(map[string]bool), why: make(map[string]string), done: make(chan struct{})}
		c.watches[r] = w
		if !c.running {
			c.running = true
			go c.loop()
		} else {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	w.refs++
	return w
}

// Forget undoes one Watch of r: once every Watch is undone, r is no
// longer checked.
func (c *Checker) Forget(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.watches[r]; w != nil {
		if w.refs--; w.refs <= 0 {
			delete(c.watches, r)
		}
	}
}

// Wait returns nil once every authoritative server of r.Zone serves r, or
// an error naming the servers that do not after the propagation timeout
// (counted from Watch). A record found served stays so for later calls
// until it is forgotten. Wait watches r if it is not watched yet; the
// caller must then Forget it.
func (c *Checker) Wait(ctx context.Context, r Record) error {
	c.mu.Lock()
	w := c.watches[r]
	if w == nil {
		w = c.watchLocked(r)
	}
	c.mu.Unlock()
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		return fmt.Errorf("dns01: wait for %s: %w", trimDot(r.FQDN), context.Cause(ctx))
	}
}

// Waiting is a snapshot of the propagation check, for logs and status:
// Missing of the Total records being watched are not yet served by every
// authoritative server of their zone.
type Waiting struct {
	Missing, Total int
}

// String returns "waiting for 3 of 8 records".
func (w Waiting) String() string {
	return "waiting for " + strconv.Itoa(w.Missing) + " of " + strconv.Itoa(w.Total) + " records"
}

// Waiting reports how many watched records are not served everywhere yet.
func (c *Checker) Waiting() Waiting {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitingLocked()
}

func (c *Checker) waitingLocked() Waiting {
	w := Waiting{Total: len(c.watches)}
	for _, x := range c.watches {
		if x.err != nil || !isDone(x) {
			w.Missing++
		}
	}
	return w
}

func isDone(w *watch) bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// loop runs rounds while records wait: one at once, then one every
// interval or as soon as a record is added.
func (c *Checker) loop() {
	for c.round() {
		t := time.NewTimer(c.interval)
		select {
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// round asks the authoritative servers about every record not yet served
// everywhere, settles the records it can, and reports whether any record
// still waits. When none does, it marks the loop stopped.
func (c *Checker) round() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*queryTimeout)
	defer cancel()
	pending := c.pending()
	servers := c.serversOf(ctx, pending)
	answers := c.askAll(ctx, pending, servers)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for r, w := range pending {
		c.settle(r, w, servers[r.Zone], answers, now)
	}
	waiting := c.waitingLocked()
	c.logProgress(waiting)
	for _, w := range c.watches {
		if !isDone(w) {
			return true
		}
	}
	c.running = false
	return false
}

// pending returns the watched records not settled yet.
func (c *Checker) pending() map[Record]*watch {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Record]*watch)
	for r, w := range c.watches {
		if !isDone(w) {
			out[r] = w
		}
	}
	return out
}

// settle records what the servers answered about r and closes w.done once
// every server serves it or time is up. It runs under c.mu.
func (c *Checker) settle(r Record, w *watch, servers zoneServers, answers map[question]answer, now time.Time) {
	if servers.err != nil {
		w.why = map[string]string{"": servers.err.Error()}
	}
	missing := 0
	for _, ns := range servers.list {
		if w.seen[ns.name] {
			continue
		}
		a := answers[question{ns: ns.name, fqdn: r.FQDN}]
		switch {
		case a.err != nil:
			w.why[ns.name] = a.err.Error()
		case a.values[r.Value]:
			w.seen[ns.name] = true
			delete(w.why, ns.name)
			continue
		default:
			w.why[ns.name] = "not served by " + trimDot(ns.name) + " at " + a.addr
		}
		missing++
	}
	if servers.err == nil && missing == 0 {
		close(w.done)
		return
	}
	if now.Sub(w.added) >= c.timeout {
		w.err = c.timeoutError(r, w)
		close(w.done)
	}
}

func (c *Checker) timeoutError(r Record, w *watch) error {
	var reasons []string
	for _, why := range w.why {
		reasons = append(reasons, why)
	}
	return fmt.Errorf("dns01: TXT %s not served by every authoritative server of zone %s after %v: %s (%s)",
		trimDot(r.FQDN), trimDot(r.Zone), c.timeout, strings.Join(sortStrings(reasons), "; "), c.waitingLocked())
}

// logProgress logs the count of missing records when it changes.
func (c *Checker) logProgress(w Waiting) {
	if w == c.lastLog {
		return
	}
	c.lastLog = w
	if w.Missing > 0 {
		c.log.Info("dns-01: waiting for "+strconv.Itoa(w.Missing)+" more records to show up in DNS ("+w.String()+")",
			"missing", w.Missing, "total", w.Total)
	} else if w.Total > 0 {
		c.log.Info("dns-01 records served by every authoritative server", "total", w.Total)
	}
}
