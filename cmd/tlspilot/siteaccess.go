package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/tlspilot/tlspilot/internal/config"
)

// checkSiteAccess says, for check, whether the user serve runs as may
// read what its sites need, from permission bits and ACLs alone: each
// root and route root (read and search), cert_file and key_file, and
// client_auth's ca and crl files. serve opens them all after dropping its privileges,
// so a check run as root said OK to a config that serve then refused
// ("root: open /srv/x: permission denied").
func checkSiteAccess(cfg *config.Config) error {
	if cfg.User == "" && cfg.Group == "" {
		return nil
	}
	uid, gid, err := runAs(cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range siteFiles(cfg) {
		if err := accessible(n.path, uid, gid, n.want); err != nil {
			errs = append(errs, cfg.Errorf(n.key, "%w (serve runs as user %q after binding its ports, and reads it as that user)", err, runAsName(cfg)))
		}
	}
	return errors.Join(errs...)
}

// siteFile is a file or folder a site reads, and the access it needs.
type siteFile struct {
	key, path string
	want      fs.FileMode
}

// siteFiles lists what cfg's sites read.
func siteFiles(cfg *config.Config) []siteFile {
	var out []siteFile
	add := func(key, path string, want fs.FileMode) {
		if path != "" {
			out = append(out, siteFile{key, path, want})
		}
	}
	for i, s := range cfg.Sites {
		key := fmt.Sprintf("site[%d]", i+1)
		add(key+".root", s.Root, 5)
		for j, r := range s.Routes {
			add(fmt.Sprintf("%s.route[%d].root", key, j+1), r.Root, 5)
		}
		add(key+".cert_file", s.CertFile, 4)
		add(key+".key_file", s.KeyFile, 4)
		if a := s.ClientAuth; a != nil {
			add(key+".client_auth.ca", a.CAFile, 4)
			for j, f := range a.CRLFiles {
				add(fmt.Sprintf("%s.client_auth.crl[%d]", key, j+1), f, 4)
			}
		}
	}
	return out
}

// runAsName names the user serve runs as, for messages.
func runAsName(cfg *config.Config) string {
	if cfg.User != "" {
		return cfg.User
	}
	return "(unchanged), group " + cfg.Group
}
