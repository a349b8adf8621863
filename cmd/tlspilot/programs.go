package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/tlspilot/tlspilot/internal/config"
)

// checkRunAsPrograms says, for check, from permission bits and ACLs,
// whether the user serve runs as may execute the programs serve runs as
// that user: notify_command's, at every event, and the [dns] exec
// provider's, at every dns-01 order. One it may not run failed every time, reported
// first at the first use, perhaps a certificate's "expiring". A bare
// name, found in PATH, is left to that search.
func checkRunAsPrograms(cfg *config.Config) error {
	if cfg.User == "" && cfg.Group == "" {
		return nil
	}
	uid, gid, err := runAs(cfg)
	if err != nil {
		return err
	}
	return checkPrograms(cfg, func(path string) error { return accessible(path, uid, gid, 1) })
}

// checkOwnPrograms is checkRunAsPrograms for serve once it runs as that
// user: it asks the kernel (access(2)), which also counts what the
// permission bits do not show, such as supplementary groups kept when a
// supervisor started serve as the user (systemd's SupplementaryGroups=)
// and ACLs, so that a program the user may run is not reported.
func checkOwnPrograms(cfg *config.Config) error {
	if cfg.User == "" && cfg.Group == "" {
		return nil
	}
	return checkPrograms(cfg, func(path string) error {
		if err := syscall.Access(path, 1); err != nil { // X_OK
			return fmt.Errorf("not executable by this process: %w", err)
		}
		return nil
	})
}

// checkPrograms applies runnable to each program serve runs given by an
// absolute path.
func checkPrograms(cfg *config.Config, runnable func(path string) error) error {
	var progs []siteFile
	if nc := cfg.Notify; nc != nil && len(nc.Command) > 0 {
		progs = append(progs, siteFile{key: "notify_command", path: nc.Command[0]})
	}
	if d := cfg.DNS; d != nil && d.Provider == "exec" {
		progs = append(progs, siteFile{key: "dns.command", path: d.Command})
	}
	var errs []error
	for _, p := range progs {
		if !filepath.IsAbs(p.path) {
			continue
		}
		if err := runnable(p.path); err != nil {
			errs = append(errs, cfg.Errorf(p.key, "%s: %w (serve runs as user %q after binding its ports, and runs it as that user)",
				p.path, err, runAsName(cfg)))
		}
	}
	return errors.Join(errs...)
}
