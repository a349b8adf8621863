package notify

// A hook is told of one certificate's events in the order they happened,
// each once the one before has finished: a receiver keeping the last
// state it was told must never see a renewal failure's retry arrive after
// the renewal that followed it. Notifications of one hook and one
// certificate form a line: each gets the next number of its line when
// queued, and a worker that takes one out of the queue before its turn
// parks it in the line, for the worker delivering the one before to
// deliver next. Other lines are not held up.

// lineKey names the line of one hook and one certificate.
type lineKey struct {
	h    hook
	cert string
}

// line is the state of one lineKey, guarded by Notifier.mu. It is
// deleted once every notification queued in it has started.
type line struct {
	next    uint64         // number of the next notification queued
	turn    uint64         // number of the next one to start
	running bool           // one is being delivered
	parked  map[uint64]job // taken out of the queue before their turn
}

// queueLocked numbers j in its line and queues it, reporting false when
// the queue is full.
func (n *Notifier) queueLocked(j job) bool {
	k := lineKey{j.h, j.p.CertID}
	l := n.lines[k]
	if l == nil {
		l = &line{parked: map[uint64]job{}}
	}
	if n.waiting >= cap(n.queue) {
		return false
	}
	j.seq = l.next
	select {
	case n.queue <- j:
	default:
		return false
	}
	l.next++
	n.lines[k] = l
	n.waiting++
	return true
}

// take reports whether j, just taken out of the queue, is to be
// delivered now; if not, it is parked for its turn.
func (n *Notifier) take(j job) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.lines[lineKey{j.h, j.p.CertID}]
	if l.running || j.seq != l.turn {
		l.parked[j.seq] = j
		return false
	}
	l.running = true
	l.turn++
	n.waiting--
	return true
}

// finished records that j was delivered and returns the next
// notification of its line if it is parked: the caller delivers it.
func (n *Notifier) finished(j job) (job, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := lineKey{j.h, j.p.CertID}
	l := n.lines[k]
	if nj, ok := l.parked[l.turn]; ok {
		delete(l.parked, l.turn)
		l.turn++
		n.waiting--
		return nj, true
	}
	l.running = false
	if l.turn == l.next {
		delete(n.lines, k)
	}
	return job{}, false
}
