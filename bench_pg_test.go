package tlspilot

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/pgstore"
)

// BenchmarkStartup10kPostgres is BenchmarkStartup10k over a PostgreSQL
// storage on loopback that the benchmark starts (testenv.StartPostgres):
// 10,000 certificates are written once through pgstore, then each
// iteration opens a fresh pgstore (connections, schema check) and times
// pgstore.New + New + ManageCerts until all of them are in service, as a
// node of a cluster restarts (the first start is made before, untimed:
// see firstStart). "batched" is how tlspilot loads them (one
// query per 128 certificates, storage.BatchLoader); "per-key" hides
// LoadMany from the Manager, so it reads two keys per certificate, one
// query each, as before.
//
// The machine these run on is shared, so wall time depends on the load;
// cpu-ms/op (this process) and db-cpu-ms/op (the server's processes) are
// the CPU that a start-up costs, read from /proc (Linux only; 0
// elsewhere).
func BenchmarkStartup10kPostgres(b *testing.B) {
	pg := testenv.StartPostgres(b)
	fill, err := pgstore.New(b.Context(), pgstore.Options{URL: pg.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(fill.Close)
	kek := filepath.Join(b.TempDir(), "kek")
	fx := newFixtureWith(b, Config{CA: benchCA, Storage: fill, KeyFile: kek})
	specs, _ := fx.addCerts(b, benchCerts, siteName)
	firstStart(b, fx, specs)
	b.Run("batched", func(b *testing.B) {
		benchStartupPostgres(b, pg, fx, specs, func(s *pgstore.Store) storage.Storage { return s })
	})
	b.Run("per-key", func(b *testing.B) {
		benchStartupPostgres(b, pg, fx, specs, func(s *pgstore.Store) storage.Storage { return struct{ storage.Storage }{s} })
	})
}

// benchStartupPostgres times opening a pgstore on pg's database, New over
// it (as wrap returns it) with fx's key-encryption key, and
// ManageCerts(specs).
func benchStartupPostgres(b *testing.B, pg *testenv.Postgres, fx *fixture, specs []Cert, wrap func(*pgstore.Store) storage.Storage) {
	var open, cpu, dbCPU time.Duration
	for b.Loop() {
		cpu0, db0 := procCPU("self"), serverCPU(pg.Dir)
		start := time.Now()
		s, err := pgstore.New(b.Context(), pgstore.Options{URL: pg.URL})
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(start)
		cfg := fx.cfg
		cfg.Storage = wrap(s)
		m, err := New(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.ManageCerts(b.Context(), specs...); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += procCPU("self") - cpu0
		dbCPU += serverCPU(pg.Dir) - db0
		checkServing(b, m, len(specs))
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/op")
	b.ReportMetric(open.Seconds()*1000/float64(b.N), "open-ms/op")
	b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(dbCPU.Seconds()*1000/float64(b.N), "db-cpu-ms/op")
}

// serverCPU returns the CPU time used so far by the PostgreSQL server
// whose data directory is dir/data and by its children (the sessions),
// as /proc tells it; 0 where there is no /proc.
func serverCPU(dir string) time.Duration {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _, _ := strings.Cut(string(b), "\n")
	procs, _ := os.ReadDir("/proc")
	total := procCPU(pid)
	for _, p := range procs {
		if parent(p.Name()) == pid {
			total += procCPU(p.Name())
		}
	}
	return total
}

// statFields returns the fields of /proc/PID/stat after the command name
// (state first), or nil.
func statFields(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return nil
	}
	return f
}

// parent returns the parent process id of pid, or "".
func parent(pid string) string {
	if f := statFields(pid); f != nil {
		return f[1]
	}
	return ""
}

// procCPU returns the user plus system CPU time of process pid ("self"
// for this one), counted in the usual 100 ticks a second; 0 if unknown.
func procCPU(pid string) time.Duration {
	f := statFields(pid)
	if f == nil {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// BenchmarkReadStatus10kPostgres is BenchmarkReadStatus10k over a
// PostgreSQL storage on loopback that the benchmark starts: what
// `tlspilot status` costs a cluster's database. "batched" is how
// ReadStatus reads (the records of 256 certificates per query,
// storage.BatchLoader); "per-key" hides LoadMany, so each certificate
// costs four queries (certificate, renewal state, order progress, deploy
// record), as before.
func BenchmarkReadStatus10kPostgres(b *testing.B) {
	pg := testenv.StartPostgres(b)
	s, err := pgstore.New(b.Context(), pgstore.Options{URL: pg.URL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	kek := filepath.Join(b.TempDir(), "kek")
	fx := newFixtureWith(b, Config{CA: benchCA, Storage: s, KeyFile: kek})
	specs, _ := fx.addCerts(b, benchCerts, siteName)
	for name, st := range map[string]storage.Storage{"batched": s, "per-key": struct{ storage.Storage }{s}} {
		b.Run(name, func(b *testing.B) {
			cfg := Config{CA: benchCA, Storage: st, KeyFile: kek}
			for b.Loop() {
				r := ReadStatus(b.Context(), cfg, specs...)
				if len(r.Certificates) != benchCerts || r.ExitCode == ExitUnknown {
					b.Fatalf("%d certificates, %s %s", len(r.Certificates), r.Status, r.Error)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/op")
		})
	}
}
