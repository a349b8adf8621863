package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/config"
	"github.com/tlspilot/tlspilot/internal/server"
	"github.com/tlspilot/tlspilot/internal/tlsprofile"
)

// acmeCerts lists the certificates the Manager obtains: one per site that
// has no certificate files of its own.
func acmeCerts(cfg *config.Config) []tlspilot.Cert {
	var out []tlspilot.Cert
	for _, s := range cfg.Sites {
		if c, ok := acmeCert(s); ok {
			out = append(out, c)
		}
	}
	return out
}

func acmeCert(s config.Site) (tlspilot.Cert, bool) {
	if s.CertFile != "" {
		return tlspilot.Cert{}, false
	}
	c := tlspilot.Cert{Names: s.Names, Challenge: s.Challenge}
	for _, kt := range s.KeyTypes {
		c.KeyTypes = append(c.KeyTypes, tlspilot.KeyType(kt))
	}
	return c, true
}

// serverSites maps the config's sites onto the server's; sites without
// certificate files get theirs from getCert (the Manager's).
func serverSites(cfg *config.Config, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) []server.Site {
	out := make([]server.Site, 0, len(cfg.Sites))
	for _, s := range cfg.Sites {
		ss := server.Site{
			Names:        s.Names,
			Default:      s.Default,
			Root:         s.Root,
			Proxy:        s.Proxy,
			ProxyTLS:     server.ProxyTLS(s.ProxyTLS),
			Redirect:     s.Redirect,
			HTTPRedirect: s.HTTPRedirect,
			HSTS:         s.HSTS,
			CSP:          s.CSP,
			Headers:      s.Headers,
			TLSProfile:   tlsprofile.Profile(s.TLSProfile),
			// Per site, so one site behind a load balancer does not
			// let every site's clients claim an address.
			TrustedProxies: s.TrustedProxies,
			NoOCSPStapling: s.NoOCSPStapling,
		}
		for _, r := range s.Routes {
			ss.Routes = append(ss.Routes, server.Route{Path: r.Path, Root: r.Root, Proxy: r.Proxy,
				ProxyTLS: server.ProxyTLS(r.ProxyTLS), Redirect: r.Redirect})
		}
		if s.CertFile != "" {
			ss.Cert = server.CertSource{CertFile: s.CertFile, KeyFile: s.KeyFile}
		} else {
			ss.Cert = server.CertSource{GetCertificate: getCert}
		}
		out = append(out, ss)
	}
	return out
}

// certKey identifies a managed certificate across reloads.
func certKey(c tlspilot.Cert) string {
	names := slices.Clone(c.Names)
	slices.Sort(names)
	kts := make([]string, len(c.KeyTypes))
	for i, k := range c.KeyTypes {
		kts[i] = string(k)
	}
	return strings.Join(names, ",") + "|" + strings.Join(kts, ",") + "|" + c.Challenge
}

// reload applies a new config file: the Manager takes on added
// certificates first (so their names are served at once, by a temporary
// certificate if need be), then the server swaps its site table, then
// removed certificates are let go. A config that fails anywhere is
// refused and the running one keeps serving.
func (d *daemon) reload(ctx context.Context, path string) {
	cfg, err := loadForReload(path)
	if err != nil {
		d.log.Error("reload refused: the running config stays in service", "error", err)
		return
	}
	if err := d.apply(ctx, cfg); err != nil {
		d.log.Error("reload refused: the running config stays in service", "error", err)
		return
	}
	// Compared with the config serve started with: a value changed twice
	// still needs a restart, one restored no longer does.
	for _, w := range d.restartOnly(cfg) {
		d.log.Warn("reload: this setting changes only on restart", "key", w)
	}
	d.cfg = cfg
	d.log.Info("config reloaded", "config", cfg.File, "sites", len(cfg.Sites))
}

// loadForReload loads the config file at path, refusing one that sets
// nothing (empty, blank or comments only): an editor saving in place
// truncates the file before writing it, and such a file would be a
// valid config without sites and with default listeners, so a SIGHUP at
// that moment would stop serving every site.
func loadForReload(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if setsNothing(data) {
		return nil, fmt.Errorf("%s is empty or holds only comments (still being written?)", path)
	}
	return config.Parse(path, data)
}

// setsNothing reports whether data has only blank and comment lines.
func setsNothing(data []byte) bool {
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(strings.TrimPrefix(l, "\uFEFF"))
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func (d *daemon) apply(ctx context.Context, cfg *config.Config) error {
	// The first site that needs ACME makes the Manager (and opens the
	// storage) now; a Manager once made stays.
	made, err := d.acme.ensure(ctx, cfg)
	if err != nil {
		return err
	}
	if made {
		d.acme.run(ctx)
	}
	m := d.acme.manager()
	if m == nil {
		if err := d.reloadSites(cfg); err != nil {
			return fmt.Errorf("%s: %w", cfg.File, err)
		}
		return nil
	}
	added, removed := certChanges(acmeCerts(d.cfg), acmeCerts(cfg))
	// What the removed certificates serve is kept for their names still
	// served, until the added certificates are obtained.
	d.acme.keepServing(removed, acmeCerts(cfg))
	// Names moving between certificates must be free before they are
	// managed again.
	for _, c := range removed {
		m.Unmanage(c.Names[0])
	}
	rollback := func() {
		for _, c := range added {
			m.Unmanage(c.Names[0])
		}
		_ = m.ManageCerts(ctx, removed...)
	}
	if err := m.ManageCerts(ctx, added...); err != nil {
		rollback()
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	if err := d.reloadSites(cfg); err != nil {
		rollback()
		return inFile(cfg, err)
	}
	return nil
}

// reloadSites has the server take cfg's sites, with their client
// authentication.
func (d *daemon) reloadSites(cfg *config.Config) error {
	sites, settle, err := d.auth.sites(cfg, d.acme.GetCertificate)
	if err != nil {
		return err
	}
	err = d.srv.Reload(sites)
	settle(err == nil)
	return siteError(cfg, err)
}

// siteError gives an error of the server about one of cfg's sites the
// line and key of that [[site]] (site[N], from 1, as the config names
// it); before, it read "site 0 (name)" with no line.
func siteError(cfg *config.Config, err error) error {
	var se *server.SiteError
	if errors.As(err, &se) && se.Index < len(cfg.Sites) {
		return cfg.Errorf(fmt.Sprintf("site[%d]", se.Index+1), "%s: %w", se.Name, se.Err)
	}
	return err
}

// inFile names cfg's file in err, unless err names it already (a
// *config.Error says file, line and key).
func inFile(cfg *config.Config, err error) error {
	var ce *config.Error
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%s: %w", cfg.File, err)
}

// certChanges returns the certificates of now that were not in before,
// and those of before that are no longer in now.
func certChanges(before, now []tlspilot.Cert) (added, removed []tlspilot.Cert) {
	old := make(map[string]tlspilot.Cert)
	for _, c := range before {
		old[certKey(c)] = c
	}
	keep := make(map[string]bool)
	for _, c := range now {
		k := certKey(c)
		keep[k] = true
		if _, ok := old[k]; !ok {
			added = append(added, c)
		}
	}
	for k, c := range old {
		if !keep[k] {
			removed = append(removed, c)
		}
	}
	return added, removed
}

// restartOnly names the settings of cfg that differ from those in
// effect and take effect only when serve restarts: the Manager's
// compared with the config it was made from (at start, or at the first
// reload that needed it), the others with the config serve started with.
func (d *daemon) restartOnly(cfg *config.Config) []string {
	out := restartOnly(d.started, cfg)
	from := d.acme.from
	if from == nil || from == d.started {
		return out
	}
	out = slices.DeleteFunc(out, managerKey)
	for _, k := range restartOnly(from, cfg) {
		if managerKey(k) {
			out = append(out, k)
		}
	}
	return out
}

// managerKey reports whether the restart-only key names a setting the
// Manager is made from (managerConfig).
func managerKey(key string) bool {
	switch key {
	case "ca", "ca_root", "email", "agree_terms", "keep_deactivated_account", "eab_key_id",
		"eab_hmac_file", "profile", "storage", "kek_file", "dns", "warn_window":
		return true
	}
	return false
}

// restartOnly names the settings that differ between a and b but take
// effect only when serve restarts.
func restartOnly(a, b *config.Config) []string {
	var out []string
	diff := func(key string, x, y any) {
		if fmt.Sprint(x) != fmt.Sprint(y) {
			out = append(out, key)
		}
	}
	// The Manager, and its account, are made once, from these.
	diff("ca", a.CA, b.CA)
	diff("ca_root", a.CARoots, b.CARoots)
	diff("email", a.Email, b.Email)
	diff("agree_terms", a.AgreeTerms, b.AgreeTerms)
	diff("keep_deactivated_account", a.KeepDeactivatedAccount, b.KeepDeactivatedAccount)
	diff("eab_key_id", a.EABKeyID, b.EABKeyID)
	diff("eab_hmac_file", a.EABHMACFile, b.EABHMACFile)
	diff("profile", a.Profile, b.Profile)
	diff("storage", a.Storage, b.Storage)
	diff("kek_file", a.KEKFile, b.KEKFile)
	diff("http_listen", a.HTTPListen, b.HTTPListen)
	diff("https_listen", a.HTTPSListen, b.HTTPSListen)
	diff("user", a.User, b.User)
	diff("group", a.Group, b.Group)
	diff("challenge_dir", a.ChallengeDir, b.ChallengeDir)
	diff("access_log", a.AccessLog, b.AccessLog)
	diff("log_level", a.LogLevel, b.LogLevel)
	diff("log_format", a.LogFormat, b.LogFormat)
	diff("log_file", a.LogFile, b.LogFile)
	diff("admin_listen", a.AdminListen, b.AdminListen)
	diff("admin_allow_remote", a.AdminAllowRemote, b.AdminAllowRemote)
	diff("admin_hosts", a.AdminHosts, b.AdminHosts)
	diff("dns", a.DNS, b.DNS)
	diff("warn_window", a.WarnWindow, b.WarnWindow)
	diff("max_connections", a.MaxConnections, b.MaxConnections)
	out = append(out, changedNotifyKeys(a.Notify, b.Notify)...)
	return out
}
