package main

import (
	"fmt"
	"path/filepath"

	"github.com/tlspilot/tlspilot/internal/config"
)

// checkLogDirs says, from permission bits alone, whether the user serve
// runs as may create files in the directories of log_file and
// access_log: on SIGUSR1 (after logrotate moved them aside) serve opens
// new files there as that user, not as the root that opened the first
// ones, and a directory it cannot write stops the log at the first
// rotation.
func checkLogDirs(cfg *config.Config) error {
	uid, gid, err := runAs(cfg)
	if err != nil {
		return err
	}
	for _, lf := range []struct{ key, path string }{{"log_file", cfg.LogFile}, {"access_log", cfg.AccessLog}} {
		if !filepath.IsAbs(lf.path) {
			continue // stdout, stderr, off
		}
		dir := filepath.Dir(lf.path)
		if err := accessible(dir, uid, gid, 3); err != nil {
			hint := ""
			if cfg.User != "" {
				hint = fmt.Sprintf(" (serve runs as user %q after binding its ports and opens a new file there on SIGUSR1, after log rotation: chown %[1]s %s)", cfg.User, dir)
			}
			return cfg.Errorf(lf.key, "%s: %w%s", dir, err, hint)
		}
	}
	return nil
}
