package solvers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
)

const (
	// sendTimeout bounds one batch: locating its records and the provider
	// call (which has its own, shorter timeout per request).
	sendTimeout = 5 * time.Minute
	// autoSend sends queued records that no Wait asked for.
	autoSend = time.Second
	// locateConcurrency bounds the records located at once.
	locateConcurrency = 16
)

// errWithdrawn finishes a queued record cleaned up before it was sent.
var errWithdrawn = errors.New("record withdrawn before it was sent")

// job is one record on its way to the provider.
type job struct {
	key  recordKey
	rec  dns01.Record // where it goes; set when located
	done chan struct{}
	err  error // set before done is closed
}

func newJob(k recordKey) *job { return &job{key: k, done: make(chan struct{})} }

func (j *job) finish(err error) {
	j.err = err
	close(j.done)
}

// wait returns the job's outcome once it is finished.
func (j *job) wait(ctx context.Context) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// batcher collects jobs and hands them to run in batches, one batch at a
// time: jobs added while a batch is in flight go in the next one.
type batcher struct {
	delay time.Duration   // wait for more jobs before taking a batch
	run   func(bs []*job) // must finish every job

	mu    sync.Mutex
	queue []*job
	busy  bool
	timer *time.Timer // sends jobs no one kicked
}

// add queues j without sending it.
func (b *batcher) add(j *job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, j)
	if b.timer == nil {
		b.timer = time.AfterFunc(autoSend, b.autoKick)
	}
}

// autoKick sends the jobs that no one kicked.
func (b *batcher) autoKick() {
	b.mu.Lock()
	b.timer = nil
	b.mu.Unlock()
	b.kick()
}

// drop takes j off the queue, finishing it, if it was not taken yet.
func (b *batcher) drop(j *job) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.queue {
		if x == j {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			if len(b.queue) == 0 && b.timer != nil {
				b.timer.Stop()
				b.timer = nil
			}
			j.finish(errWithdrawn)
			return true
		}
	}
	return false
}

// kick starts sending the queue unless a batch is in flight, which will
// take the queue after it.
func (b *batcher) kick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy || len(b.queue) == 0 {
		return
	}
	b.busy = true
	go b.loop()
}

func (b *batcher) loop() {
	for {
		if b.delay > 0 {
			time.Sleep(b.delay)
		}
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
		if len(batch) == 0 {
			b.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.run(batch)
	}
}

// sendPresent locates the records of batch and presents them in one
// provider call; those presented are watched for propagation.
func (s *DNS01) sendPresent(batch []*job) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	located := s.locate(ctx, batch)
	if len(located) == 0 {
		return
	}
	recs := make([]dns01.Record, len(located))
	for i, j := range located {
		recs[i] = j.rec
	}
	s.provMu.Lock()
	err := s.prov.Present(ctx, recs)
	s.provMu.Unlock()
	if err != nil {
		s.log.Warn("present dns-01 records", "records", len(recs), "error", err)
	} else {
		s.log.Info(fmt.Sprintf("dns-01: challenges for %d identifiers presented in one update", len(recs)), "records", len(recs))
	}
	for _, j := range located {
		if err == nil {
			s.check.Watch(j.rec)
		}
		j.finish(err)
	}
}

// locate finds where each record of batch goes, finishing those it cannot
// place with the error, and returns the others.
func (s *DNS01) locate(ctx context.Context, batch []*job) []*job {
	sem := make(chan struct{}, locateConcurrency)
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i, j := range batch {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			j.rec, errs[i] = s.check.Locate(ctx, j.key.domain, j.key.value)
		}()
	}
	wg.Wait()
	var out []*job
	for i, j := range batch {
		if errs[i] != nil {
			j.finish(errs[i])
			continue
		}
		out = append(out, j)
	}
	return out
}

// sendRemove removes the records of batch in one provider call.
func (s *DNS01) sendRemove(batch []*job) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	defer cancel()
	recs := make([]dns01.Record, len(batch))
	for i, j := range batch {
		recs[i] = j.rec
	}
	s.provMu.Lock()
	err := s.prov.CleanUp(ctx, recs)
	s.provMu.Unlock()
	for _, j := range batch {
		j.finish(err)
	}
}
