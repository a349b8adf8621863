package main

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/keys"
)

// checkStorageKEK reads, for check, the key-encryption key serve uses
// when the config names no kek_file (the storage directory's "kek"), with
// the rules serve applies (keys.CheckKEKFile), and refuses it at the
// storage line. A kek_file is read by config.Load already; a missing key
// is made by serve or init, and one this process may not read is left to
// checkStorage, which knows who serve runs as.
func checkStorageKEK(cfg *config.Config) error {
	if cfg.KEKFile != "" || cfg.StorageIsDatabase() || len(configuredCerts(cfg)) == 0 {
		return nil
	}
	dir, err := storageDir(cfg)
	if err != nil {
		return nil // reported by checkServeStorage
	}
	err = keys.CheckKEKFile(filepath.Join(dir, "kek"))
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return cfg.Errorf("storage", "%w", err)
}
