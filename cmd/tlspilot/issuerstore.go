package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/fleet"
	"github.com/tlspilot/tlspilot/internal/fleetca"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// issuerStore is the storage of an issuer's config, opened for the
// issuer subcommands.
type issuerStore struct {
	cfg   *config.Config
	s     storage.Storage
	close func()
}

// openIssuerStore opens the storage of cfg, which must be an issuer's.
// It creates nothing: a storage that tlspilot init has not made yet (no
// key-encryption key) is an error saying to run it.
func openIssuerStore(cfg *config.Config) (*issuerStore, error) {
	if !cfg.IsIssuer() {
		return nil, cfg.Errorf("issuer_listen", "not set: this config is no fleet issuer's (add issuer_listen and issuer_names, then run tlspilot init)")
	}
	kek, err := issuerKEK(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(kek); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key-encryption key %s does not exist: run tlspilot init --config %s first", kek, cfg.File)
	}
	if cfg.StorageIsDatabase() {
		db, err := openDatabase(cfg, nil)
		if err != nil {
			return nil, err
		}
		return &issuerStore{cfg: cfg, s: db, close: db.Close}, nil
	}
	dir, _ := storageDir(cfg) // issuerKEK checked it
	fsst, err := fsstore.New(fsstore.Options{Dir: dir})
	if err != nil {
		return nil, storageError(cfg, dir, err)
	}
	return &issuerStore{cfg: cfg, s: fsst, close: func() {}}, nil
}

// issuerKEK is the key-encryption key file of cfg.
func issuerKEK(cfg *config.Config) (string, error) {
	if cfg.StorageIsDatabase() {
		return cfg.KEKFile, nil
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return "", err
	}
	return kekFile(cfg, dir), nil
}

// fleetOptions returns the options of the fleet CA in this storage,
// reading the key-encryption key.
func (is *issuerStore) fleetOptions() (fleetca.Options, error) {
	kek, err := issuerKEK(is.cfg)
	if err != nil {
		return fleetca.Options{}, err
	}
	sealer, err := keys.LoadOrCreateSealer(kek)
	if err != nil {
		return fleetca.Options{}, fmt.Errorf("open key-encryption key: %w", err)
	}
	return fleetca.Options{Storage: is.s, Sealer: sealer}, nil
}

// registry returns the agents' registry in this storage.
func (is *issuerStore) registry() (*fleet.Registry, error) {
	return fleet.New(fleet.Options{Storage: is.s})
}

// auditedRegistry returns the agents' registry in this storage with the
// issuer's audit trail, for a command (name) that changes agents, and a
// function releasing the trail. The trail is opened as the issuer opens
// it, without creating the PostgreSQL table: when it cannot be opened
// (no table yet), the command says so on stderr and goes on without
// it, as the issuer goes on when an append fails. Warnings of the trail
// and failed appends go to stderr.
func (is *issuerStore) auditedRegistry(ctx context.Context, name string, stderr io.Writer) (*fleet.Registry, func(), error) {
	warn := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	trail, err := openAuditTrail(ctx, is, false, warn)
	if err != nil {
		fmt.Fprintf(stderr, "tlspilot %s: warning: not audited: %v\n", name, err)
		trail = nil
	}
	opts := fleet.Options{Storage: is.s, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	release := func() {}
	if trail != nil {
		opts.Auditor, release = trail, trail.Close
	}
	r, err := fleet.New(opts)
	if err != nil {
		release()
		return nil, nil, err
	}
	return r, release, nil
}

// initFleetCA makes the fleet CA of an issuer's config, once, and says
// whether it made or kept it. tlspilot init calls it after the storage
// and its key-encryption key exist.
func initFleetCA(ctx context.Context, cfg *config.Config, stdout io.Writer) error {
	is, err := openIssuerStore(cfg)
	if err != nil {
		return err
	}
	defer is.close()
	opts, err := is.fleetOptions()
	if err != nil {
		return err
	}
	ca, created, err := fleetca.Create(ctx, opts)
	if err != nil {
		return err
	}
	state := "exists, kept"
	if created {
		state = "created"
	}
	fmt.Fprintf(stdout, "fleet CA %q (valid until %s): %s; agents trust the certificate `tlspilot issuer ca --config %s` prints\n",
		ca.Certificate().Subject.CommonName, ca.Certificate().NotAfter.UTC().Format("2006-01-02"), state, cfg.File)
	return nil
}
