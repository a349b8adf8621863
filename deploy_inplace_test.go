package tlspilot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/deploy"
	"github.com/tlspilot/tlspilot/internal/testenv"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// lockCounter is a Storage that records the names of the locks taken.
type lockCounter struct {
	storage.Storage
	mu    sync.Mutex
	names []string
}

func (l *lockCounter) Lock(ctx context.Context, name string) (storage.Lease, error) {
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
	return l.Storage.Lock(ctx, name)
}

// taken returns how many locks whose name starts with prefix were taken
// since the last call, and forgets them.
func (l *lockCounter) taken(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, name := range l.names {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	l.names = nil
	return n
}

// plainDeployer hides the DeployChecker of the Deployer it holds.
type plainDeployer struct{ Deployer }

// TestDeployInPlaceNoLock: what `certs --once` does at each run of its
// timer with nothing new. A Manager started over a certificate that is
// deployed as stored checks the files through the Deployer's
// DeployChecker, takes no deploy lock (its lock file is written and
// synced), writes and reloads nothing, and reports the deployment as
// done. A deployed file removed meanwhile is written again under the
// lock, with a reload; a Deployer without DeployChecker goes through the
// lock every time.
func TestDeployInPlaceNoLock(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	ev := &events{}
	dir := t.TempDir()
	fs, err := fsstore.New(fsstore.Options{Dir: filepath.Join(dir, "storage")})
	if err != nil {
		t.Fatal(err)
	}
	locks := &lockCounter{Storage: fs}
	cfg := testConfig(t, p, ev)
	cfg.Storage, cfg.KeyFile = locks, filepath.Join(dir, "kek")
	live, reloads := filepath.Join(dir, "live"), filepath.Join(dir, "reloads")
	files, err := deploy.New(deploy.Options{Fullchain: filepath.Join(live, "fullchain.pem"), Privkey: filepath.Join(live, "privkey.pem"),
		Reload: []string{"sh", "-c", "echo reload >> " + reloads}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(live, 0o755); err != nil {
		t.Fatal(err)
	}
	const name = "inplace.example.test"
	cert := Cert{Names: []string{name}, Deployers: map[KeyType]Deployer{ECDSAP256: files}}
	m := startManager(t, p, cfg)
	if err := m.ManageCerts(t.Context(), cert); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ev, EventDeployed, 1, 60*time.Second)
	m.Unmanage(name)
	nreloads := func() int { b, _ := os.ReadFile(reloads); return strings.Count(string(b), "reload") }

	for _, tt := range []struct {
		name    string
		d       Deployer
		change  func()
		locks   int
		reloads int
	}{
		{"nothing new", files, func() {}, 0, 0},
		{"file removed", files, func() { _ = os.Remove(filepath.Join(live, "privkey.pem")) }, 1, 1},
		{"no DeployChecker", plainDeployer{files}, func() {}, 1, 0},
	} {
		tt.change()
		locks.taken("")
		before := nreloads()
		once, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c := cert
		c.Deployers = map[KeyType]Deployer{ECDSAP256: tt.d}
		if err := once.ManageCerts(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		if err := once.Deploy(t.Context()); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if n := locks.taken("deploy/"); n != tt.locks {
			t.Errorf("%s: %d deploy locks taken, want %d", tt.name, n, tt.locks)
		}
		if n := nreloads() - before; n != tt.reloads {
			t.Errorf("%s: %d reloads, want %d", tt.name, n, tt.reloads)
		}
		st := once.Status()
		if d := st[0].Deploy; d == nil || d.State != DeployDone || d.Serial != st[0].Serial {
			t.Errorf("%s: deploy status %+v, certificate serial %s; want deployed", tt.name, d, st[0].Serial)
		}
	}
}
