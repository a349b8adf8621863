package pgstore_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// benchKeys is the number of 4 KiB values the storage benchmarks cycle
// through; List returns all of them.
const benchKeys = 100

// BenchmarkPostgres measures single storage operations, one at a time,
// against a PostgreSQL server on loopback, and reports the median and
// 99th percentile latency (p50-µs, p99-µs) besides the mean (ns/op).
// Values are 4 KiB, about a certificate record. The test server runs with
// fsync and synchronous_commit off, so a commit here costs no disk flush:
// writes on a real server cost that much more.
func BenchmarkPostgres(b *testing.B) {
	pg := testenv.StartPostgres(b)
	s, err := pgstore.New(b.Context(), pgstore.Options{URL: pg.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	benchOps(b, s)
}

// BenchmarkFiles runs BenchmarkPostgres's operations against fsstore in
// b.TempDir(), for comparison: every Store there is fsynced (file and
// directory), and a lease in ctx is ignored (fsstore cannot fence).
func BenchmarkFiles(b *testing.B) {
	s, err := fsstore.New(fsstore.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	benchOps(b, s)
}

// benchOps fills s with benchKeys values and runs one sub-benchmark per
// operation, reporting p50 and p99 latency.
func benchOps(b *testing.B, s storage.Storage) {
	ctx := b.Context()
	value := make([]byte, 4096)
	key := func(i int) string { return "bench/k" + strconv.Itoa(i%benchKeys) }
	for i := range benchKeys {
		if err := s.Store(ctx, key(i), value); err != nil {
			b.Fatal(err)
		}
	}
	lease, err := s.Lock(ctx, "bench-held")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = lease.Unlock(context.Background()) })
	under := storage.WithLease(ctx, lease)
	ops := []struct {
		name string
		op   func(i int) error
	}{
		{"Load", func(i int) error { _, err := s.Load(ctx, key(i)); return err }},
		{"Store", func(i int) error { return s.Store(ctx, key(i), value) }},
		{"StoreUnderLease", func(i int) error { return s.Store(under, key(i), value) }},
		{"List", func(int) error { _, err := s.List(ctx, "bench"); return err }},
		{"LockUnlock", func(i int) error {
			l, err := s.Lock(ctx, "bench/lock"+strconv.Itoa(i%benchKeys))
			if err != nil {
				return err
			}
			return l.Unlock(ctx)
		}},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if err := o.op(i); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
