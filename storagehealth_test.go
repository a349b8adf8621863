package tlspilot

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestStorageRetry: checks of a storage that fails are spaced one second,
// doubling, up to the poll interval.
func TestStorageRetry(t *testing.T) {
	var got []time.Duration
	var d time.Duration
	for range 6 {
		d = storageRetry(d, 15*time.Second)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("retries = %v, want %v", got, want)
		}
	}
}

// TestStorageHealth: the first check sets the state; going down is told
// once; entries that waited while it was down are handed back when it is
// up again, once.
func TestStorageHealth(t *testing.T) {
	var h storageHealth
	t0 := time.Now()
	if h.wait("a") {
		t.Fatal("waits before any check")
	}
	if down, up, _ := h.record(t0, nil); down || up {
		t.Fatalf("first check up: down=%v up=%v", down, up)
	}
	if down, _, _ := h.record(t0.Add(time.Second), errors.New("refused")); !down {
		t.Fatal("going down not told")
	}
	if down, _, _ := h.record(t0.Add(2*time.Second), errors.New("refused")); down {
		t.Fatal("going down told twice")
	}
	if st := h.status(); st.Up || st.Error != "refused" || !st.Since.Equal(t0.Add(time.Second)) || !st.Checked.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("status while down = %+v", st)
	}
	if !h.wait("a") || !h.wait("b") || !h.wait("a") {
		t.Fatal("no wait while down")
	}
	_, up, waited := h.record(t0.Add(3*time.Second), nil)
	if !up || len(waited) != 2 {
		t.Fatalf("back: up=%v waited=%v, want a and b", up, waited)
	}
	if _, up, waited = h.record(t0.Add(4*time.Second), nil); up || waited != nil {
		t.Fatalf("coming back told twice: up=%v waited=%v", up, waited)
	}
	if st := h.status(); !st.Up || st.Error != "" || !st.Since.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("status when back = %+v", st)
	}
}

// flakyStorage is a storage that can be made unreachable: every method
// then fails, as with a stopped database.
type flakyStorage struct {
	storage.Storage
	down atomic.Bool
	hang atomic.Bool // Load and List wait for their context to end, as with a hung server
	// stuck makes Load wait for release whatever its context, as a read
	// of a hung NFS mount does.
	stuck   atomic.Bool
	release chan struct{}
	slow    atomic.Int64 // nanoseconds each Load takes, as a database round trip
}

var errUnreachable = errors.New("storage unreachable (test)")

// useFlakyStorage makes cfg keep its records in a flakyStorage over a
// directory storage, checked every 200 ms, and returns it.
func useFlakyStorage(t *testing.T, cfg *Config) *flakyStorage {
	t.Helper()
	fs, err := fsstore.New(fsstore.Options{Dir: filepath.Join(cfg.StorageDir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	st := &flakyStorage{Storage: fs}
	cfg.Storage, cfg.KeyFile, cfg.StoragePoll = st, filepath.Join(cfg.StorageDir, "kek"), 200*time.Millisecond
	return st
}

func (f *flakyStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if f.stuck.Load() {
		<-f.release
	}
	time.Sleep(time.Duration(f.slow.Load()))
	if f.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.Storage.Load(ctx, key)
}

func (f *flakyStorage) Store(ctx context.Context, key string, v []byte) error {
	if f.down.Load() {
		return errUnreachable
	}
	return f.Storage.Store(ctx, key, v)
}

func (f *flakyStorage) Delete(ctx context.Context, key string) error {
	if f.down.Load() {
		return errUnreachable
	}
	return f.Storage.Delete(ctx, key)
}

func (f *flakyStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if f.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.Storage.List(ctx, prefix)
}

func (f *flakyStorage) Lock(ctx context.Context, name string) (storage.Lease, error) {
	if f.down.Load() {
		return nil, errUnreachable
	}
	return f.Storage.Lock(ctx, name)
}

// TestStorageDownRenewalWaits: a certificate whose renewal falls due
// while the storage is unreachable stays in service; the Manager reports
// the storage down, records no failed attempt and sends no failure
// event; once the storage answers again, the renewal runs at once.
func TestStorageDownRenewalWaits(t *testing.T) {
	p := testenv.StartPebbleProcess(t, testenv.PebbleOptions{Validity: 30 * time.Second})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	st := useFlakyStorage(t, &cfg)
	m := startManager(t, p, cfg)
	const name = "down.example.test"
	if err := m.Manage(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	time.Sleep(time.Second) // the renewal information check after issuance
	// Pebble's renewal window for a 30-second certificate may open at
	// once, so a renewal may already have happened: the one awaited is
	// the next.
	renewed := len(ev.of(EventRenewed))
	st.down.Store(true)
	for deadline := time.Now().Add(5 * time.Second); m.StorageStatus().Up; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("storage not reported down")
		}
	}
	id := m.Status()[0].ID
	m.mu.Lock()
	e := m.entries[id]
	m.mu.Unlock()
	renewAt := e.snapshot().state.RenewAt
	if renewAt.IsZero() || renewAt.After(time.Now().Add(30*time.Second)) {
		t.Fatalf("renewal time %v", renewAt)
	}
	time.Sleep(time.Until(renewAt.Add(2 * time.Second)))
	if f := ev.of(EventFailed); len(f) > 0 {
		t.Fatalf("failure events while the storage was down: %v", f[0].Err)
	}
	if s := m.Status()[0]; s.Attempts != 0 || !s.Serving {
		t.Fatalf("status while the storage is down: %+v", s)
	}
	handshake(t, m, name, nil)

	st.down.Store(false)
	back := time.Now()
	waitEvent(t, ev, EventRenewed, renewed+1, 15*time.Second)
	t.Logf("renewal due %v before the storage came back; renewed %v after", back.Sub(renewAt).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	if !m.StorageStatus().Up {
		t.Error("storage still reported down after a renewal that needed it")
	}
	if f := ev.of(EventFailed); len(f) > 0 {
		t.Errorf("failure events: %v", f[0].Err)
	}
}

// TestStorageHangReportedDown: a storage that hangs instead of refusing
// (a database server stopped, a network that drops packets) is reported
// down once a check has waited storageTimeout, and a status report made
// then answers from memory at once, rather than waiting with the
// storage.
func TestStorageHangReportedDown(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	cfg := testConfig(t, p, ev)
	st := useFlakyStorage(t, &cfg)
	m := startManager(t, p, cfg)
	if err := m.Manage(t.Context(), "hang.example.test"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventObtained, 1, 30*time.Second)
	st.hang.Store(true)
	deadline := time.Now().Add(storageTimeout + 20*time.Second) // a bound for a hang, not a timing
	for m.StorageStatus().Up {
		if time.Now().After(deadline) {
			t.Fatalf("storage hung for %v, still reported up", storageTimeout+20*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	done := make(chan StatusReport, 1)
	go func() { done <- m.Report(t.Context()) }()
	select {
	case r := <-done:
		if r.ExitCode != ExitUnknown || r.Storage == nil || r.Storage.Up || len(r.Certificates) != 1 || r.Certificates[0].State != StateValid {
			t.Errorf("report while the storage hangs: exit %d, storage %+v, %+v", r.ExitCode, r.Storage, r.Certificates)
		}
	case <-time.After(storageTimeout + 20*time.Second):
		t.Fatal("Report waits for a hung storage")
	}
	st.hang.Store(false)
}

// TestLoadStorageFailedNotDamaged: a certificate that cannot be read at
// start because the storage fails (a database down during a reload) is
// logged as such, not as a damaged record "obtained again"; a record
// that is there but does not decode is.
func TestLoadStorageFailedNotDamaged(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, nil)
	c := Cert{Names: []string{"load.example.test"}}
	obtain(t, p, cfg, c)
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	st := &flakyStorage{Storage: fs}
	cfg.Storage, cfg.KeyFile = st, filepath.Join(cfg.StorageDir, "kek")
	log := &recordLog{}
	cfg.Logger = slog.New(log)
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	if err := m.ManageCerts(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if log.levels("unreadable stored certificate; it will be obtained again") != nil ||
		log.levels("stored certificate not read: the storage failed; a temporary certificate is served until it answers") == nil {
		t.Errorf("the storage down at load: logged %v", log.got)
	}
	st.down.Store(false)

	id := m.Status()[0].ID
	if err := fs.Store(t.Context(), "certs/"+id+"/cert.json", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	log.reset()
	m2, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ManageCerts(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if log.levels("unreadable stored certificate; it will be obtained again") == nil {
		t.Errorf("a damaged record: logged %v", log.got)
	}
}

// TestStorageStuckReportedDown: a storage whose reads ignore their
// context and hang (a directory on a hung NFS mount) is reported down
// after storageTimeout all the same, without a pile of reads left
// waiting, and up again once it answers.
func TestStorageStuckReportedDown(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, &events{})
	st := useFlakyStorage(t, &cfg)
	st.release = make(chan struct{})
	m := startManager(t, p, cfg)
	st.stuck.Store(true)
	bound := time.Now().Add(storageTimeout + 20*time.Second) // a bound for a hang, not a timing
	for m.StorageStatus().Up {
		if time.Now().After(bound) {
			close(st.release)
			t.Fatalf("storage stuck for %v, still reported up", storageTimeout+20*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st.stuck.Store(false)
	close(st.release)
	bound = time.Now().Add(30 * time.Second)
	for !m.StorageStatus().Up {
		if time.Now().After(bound) {
			t.Fatal("the storage answers again, still reported down")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConcurrentChecksShareRead: checks made at the same time (every
// worker whose attempt failed checks the storage, and the watch loop
// does) share one read, so a healthy storage that takes a round trip to
// answer is never found down for being asked twice at once. A first
// version failed the overlapping checks: the renewals then skipped their
// backoff and ordered again as soon as the storage was "back".
func TestConcurrentChecksShareRead(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	cfg := testConfig(t, p, &events{})
	st := useFlakyStorage(t, &cfg)
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.slow.Store(int64(30 * time.Millisecond))
	var wg sync.WaitGroup
	var down atomic.Int32
	for range 8 {
		wg.Go(func() {
			if _, ok := m.checkStorage(t.Context()); !ok {
				down.Add(1)
			}
		})
	}
	wg.Wait()
	if n := down.Load(); n != 0 || !m.StorageStatus().Up {
		t.Errorf("8 checks at once of a healthy storage: %d found it down, status %+v", n, m.StorageStatus())
	}
}
