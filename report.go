package tlspilot

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"runtime"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/issuance"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// ReadStatus reports the state of the certificates a Manager with cfg
// would keep for certs, and of every other stored certificate (state
// "unmanaged"), from the storage alone. It opens no private key (no
// key-encryption key is needed), takes no lock and contacts no CA, so it
// works with or without a running Manager on the same storage, and for a
// user who may only read the storage. A storage that cannot be read gives
// an UNKNOWN report, whose Error says why.
//
// A certificate that an order is being placed for (its progress record
// exists) is reported as renewing; NextRenewal is computed as the Manager
// would, from the stored renewal state.
func ReadStatus(ctx context.Context, cfg Config, certs ...Cert) StatusReport {
	now := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return UnknownReport(now, err)
	}
	st := cfg.Storage
	if st == nil {
		fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir, ReadOnly: true})
		switch {
		case errors.Is(err, iofs.ErrNotExist):
			st = noStorage{} // nothing was ever stored: every certificate is pending
		case err != nil:
			return UnknownReport(now, fmt.Errorf("open storage %s: %w", cfg.StorageDir, err))
		default:
			st = fs
		}
	}
	store := certstore.New(st, nil)
	stored, left, err := store.ListCertsWith(ctx, issuance.LeftFile)
	if err != nil {
		return UnknownReport(now, fmt.Errorf("read storage: %w", err))
	}
	var jobs []statusJob
	managed := make(map[string]bool)
	for _, c := range certs {
		names, err := normalizeNames(c.Names)
		if err != nil {
			return UnknownReport(now, err)
		}
		kts, err := keyTypes(cfg, c)
		if err != nil {
			return UnknownReport(now, fmt.Errorf("%v: %w", names, err))
		}
		for _, kt := range kts {
			if id := certstore.CertID(names, kt); !managed[id] {
				managed[id] = true
				jobs = append(jobs, statusJob{id, names, kt, true})
			}
		}
	}
	for _, id := range stored {
		if !managed[id] {
			jobs = append(jobs, statusJob{id: id})
		}
	}
	out := readStatuses(ctx, store, cfg, jobs, now)
	addLeftovers(ctx, store, out, left)
	acct := storedAccount(ctx, store, cfg)
	return NewStatusReport(now, out, &acct)
}

// statusJob is one certificate ReadStatus reports: a managed one
// (configured names and key type) or one only stored.
type statusJob struct {
	id      string
	names   []string
	kt      KeyType
	managed bool
}

// readStatuses reads the status of each of jobs from store. Reading is
// bound by file reads and JSON: it uses every core. A storage that reads
// many keys at once (PostgreSQL) answers a batch of certificates' records
// in one round trip instead of four each; if that read fails, each
// certificate's own reads report it.
func readStatuses(ctx context.Context, store *certstore.Store, cfg Config, jobs []statusJob, now time.Time) []CertStatus {
	out := make([]CertStatus, len(jobs))
	var g errgroup.Group
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for start := 0; start < len(jobs); start += statusBatch {
		batch := jobs[start:min(start+statusBatch, len(jobs))]
		ids := make([]string, len(batch))
		for i, j := range batch {
			ids[i] = j.id
		}
		bs := store
		if pre, err := store.PreloadStatus(ctx, ids); err == nil {
			bs = pre
		}
		for i, j := range batch {
			g.Go(func() error {
				ca := ""
				if j.managed {
					ca = cfg.CA // a certificate from another CA is replaced at once
				}
				out[start+i] = storedStatus(ctx, bs, j.id, j.names, j.kt, ca, j.managed, now, cfg.WarnWindow)
				return nil
			})
		}
	}
	_ = g.Wait()
	return out
}

// statusBatch is how many certificates ReadStatus reads in one round
// trip from a storage that reads many keys at once: few enough that the
// records held at a time stay small (about 5 KB each).
const statusBatch = 256

// noStorage is a storage that was never created: it holds nothing.
type noStorage struct{}

func (noStorage) Load(context.Context, string) ([]byte, error)   { return nil, iofs.ErrNotExist }
func (noStorage) List(context.Context, string) ([]string, error) { return nil, nil }
func (noStorage) Store(context.Context, string, []byte) error    { return fsstore.ErrReadOnly }
func (noStorage) Delete(context.Context, string) error           { return fsstore.ErrReadOnly }
func (noStorage) Lock(context.Context, string) (storage.Lease, error) {
	return nil, fsstore.ErrReadOnly
}

// storedAccount reads the state of cfg's account from storage.
func storedAccount(ctx context.Context, store *certstore.Store, cfg Config) AccountStatus {
	id, _ := accountID(cfg)
	out := AccountStatus{CA: cfg.CA, State: AccountUnregistered}
	if rec, err := store.LoadAccount(ctx, id); err == nil {
		out.URL, out.State, out.Replaces = rec.URL, AccountValid, rec.Replaces
		if rec.URL == "" {
			out.State = AccountUnregistered
		}
		if rec.Status != "" {
			out.State = rec.Status
		}
	}
	return out
}
