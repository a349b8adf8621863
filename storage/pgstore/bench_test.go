package pgstore_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// BenchmarkPostgres measures single storage operations, one at a time,
// against a PostgreSQL server on loopback, and reports the median and
// 99th percentile latency (p50-µs, p99-µs) besides the mean (ns/op).
// Values are 4 KiB, about a certificate record. The test server runs with
// fsync and synchronous_commit off, so a commit here costs no disk flush:
// writes on a real server cost that much more.
func BenchmarkPostgres(b *testing.B) {
	pg := testenv.StartPostgres(b)
	ctx := b.Context()
	s, err := pgstore.New(ctx, pgstore.Options{URL: pg.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	value := make([]byte, 4096)
	const keys = 100
	for i := range keys {
		if err := s.Store(ctx, "bench/k"+strconv.Itoa(i), value); err != nil {
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
		{"Load", func(i int) error { _, err := s.Load(ctx, "bench/k"+strconv.Itoa(i%keys)); return err }},
		{"Store", func(i int) error { return s.Store(ctx, "bench/k"+strconv.Itoa(i%keys), value) }},
		{"StoreUnderLease", func(i int) error { return s.Store(under, "bench/k"+strconv.Itoa(i%keys), value) }},
		{"List", func(int) error { _, err := s.List(ctx, "bench"); return err }},
		{"LockUnlock", func(i int) error {
			l, err := s.Lock(ctx, "bench/lock"+strconv.Itoa(i%keys))
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
