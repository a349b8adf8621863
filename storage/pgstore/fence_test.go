package pgstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// Environment of the holder process that TestPostgresFencingPausedProcess
// starts: the test binary itself, which TestMain turns into runHolder.
const (
	holderURLEnv  = "PGSTORE_TEST_HOLDER_URL"
	holderLock    = "issue/example.com"
	holderKey     = "certs/example.com"
	holderLeaseMS = 1000
)

func TestMain(m *testing.M) {
	if url := os.Getenv(holderURLEnv); url != "" {
		os.Exit(runHolder(url, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// runHolder takes holderLock with renewed leases, says "locked TOKEN",
// and for every line read from in stores that line under the lease,
// answering "ok" or "err: ...".
func runHolder(url string, in io.Reader, out io.Writer) int {
	ctx := context.Background()
	s, err := pgstore.New(ctx, pgstore.Options{URL: url, LeaseTTL: holderLeaseMS * time.Millisecond})
	if err != nil {
		fmt.Fprintln(out, "err:", err)
		return 1
	}
	defer s.Close()
	l, err := s.Lock(ctx, holderLock)
	if err != nil {
		fmt.Fprintln(out, "err:", err)
		return 1
	}
	fmt.Fprintln(out, "locked", tokenOf(l))
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if err := s.Store(storage.WithLease(ctx, l), holderKey, sc.Bytes()); err != nil {
			fmt.Fprintln(out, "err:", err)
		} else {
			fmt.Fprintln(out, "ok")
		}
	}
	return 0
}

// tokenOf returns the fencing token of a pgstore lease.
func tokenOf(l storage.Lease) int64 {
	return l.(interface{ Token() int64 }).Token()
}

// TestPostgresFencingPausedProcess stops (SIGSTOP) a process holding a
// lock, with renewal on, past its lease; another holder takes the lock
// over and stores a value; the first process, continued, tries to store
// under its old lease: its write is rejected and the newer value stays.
func TestPostgresFencingPausedProcess(t *testing.T) {
	pg := testenv.StartPostgres(t)
	_ = open(t, pg.URL, time.Second, true) // migrate before the holder starts
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderURLEnv+"="+pg.URL)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := bufio.NewScanner(stdout)
	readLine := func() string {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("holder process: no answer (%v)", lines.Err())
		}
		return lines.Text()
	}
	var oldToken int64
	if line := readLine(); !strings.HasPrefix(line, "locked ") {
		t.Fatalf("holder process: %s", line)
	} else if _, err := fmt.Sscan(strings.TrimPrefix(line, "locked "), &oldToken); err != nil {
		t.Fatalf("holder process: %q: %v", line, err)
	}
	fmt.Fprintln(stdin, "old")
	if line := readLine(); line != "ok" {
		t.Fatalf("holder's write while it holds the lease: %s", line)
	}

	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	newer := open(t, pg.URL, 5*time.Second, true)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	l2, err := newer.Lock(ctx, holderLock)
	if err != nil {
		t.Fatalf("take over the paused holder's lock: %v", err)
	}
	t.Cleanup(func() { _ = l2.Unlock(context.Background()) })
	t.Logf("lock taken over %v after the holder was stopped", time.Since(start))
	if tok := tokenOf(l2); tok <= oldToken {
		t.Errorf("new holder's token %d is not larger than the old one's %d", tok, oldToken)
	}
	if err := newer.Store(storage.WithLease(ctx, l2), holderKey, []byte("new")); err != nil {
		t.Fatalf("new holder's write: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, "stale")
	line := readLine()
	t.Logf("paused holder's write after it was continued: %s", line)
	if !strings.HasPrefix(line, "err:") || !strings.Contains(line, "taken over by token") ||
		!strings.Contains(line, storage.ErrLockLost.Error()) {
		t.Errorf("paused holder's write after its lease was taken over = %q, want it rejected as taken over (storage.ErrLockLost)", line)
	}
	if v, err := newer.Load(ctx, holderKey); err != nil || string(v) != "new" {
		t.Errorf("value after the stale write = %q, %v; want the new holder's \"new\"", v, err)
	}
}

// TestPostgresFencingExpired checks writes under a lease in every state:
// held (accepted), expired by the database's clock but not taken over,
// taken over, and released (all rejected with storage.ErrLockLost and
// changing nothing), and that the rejected lease reports itself lost.
func TestPostgresFencingExpired(t *testing.T) {
	pg := testenv.StartPostgres(t)
	ctx := t.Context()
	frozen := open(t, pg.URL, 300*time.Millisecond, false)
	live := open(t, pg.URL, 5*time.Second, true)
	const key, name = "certs/a", "issue/a"

	l1, err := frozen.Lock(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	under1 := storage.WithLease(ctx, l1)
	if err := frozen.Store(under1, key, []byte("one")); err != nil {
		t.Fatalf("Store under a held lease: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	wantRejected(t, frozen.Store(under1, key, []byte("late")), "expired at")
	wantRejected(t, frozen.Delete(under1, key), "expired at")
	if !errors.Is(l1.Err(), storage.ErrLockLost) {
		t.Errorf("Err of a lease whose write was rejected = %v, want storage.ErrLockLost", l1.Err())
	}

	l2, err := live.Lock(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	under2 := storage.WithLease(ctx, l2)
	if err := live.Store(under2, key, []byte("two")); err != nil {
		t.Fatalf("Store under the new lease: %v", err)
	}
	wantRejected(t, frozen.Store(under1, key, []byte("late")), "taken over by token")
	wantRejected(t, live.Delete(under1, key), "taken over by token") // any handle checks
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, live.Store(under2, key, []byte("after unlock")), "was released")
	if v, err := live.Load(ctx, key); err != nil || string(v) != "two" {
		t.Errorf("Load = %q, %v; want the last accepted value \"two\"", v, err)
	}
	if err := live.Store(ctx, key, []byte("no lease")); err != nil {
		t.Errorf("Store without a lease: %v", err)
	}
}

// wantRejected fails the test unless err is a fenced write's rejection
// saying why.
func wantRejected(t *testing.T, err error, why string) {
	t.Helper()
	if !errors.Is(err, storage.ErrLockLost) || !strings.Contains(err.Error(), why) {
		t.Errorf("write under a lost lease = %v, want storage.ErrLockLost saying %q", err, why)
	}
}
