package config

import (
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"math"
	"net"
	"net/mail"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// resolve makes a config path absolute, relative to the config's
// directory.
func (d *decoder) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(d.base, p)
}

// fileError records a failed file system check of p at path.
func (d *decoder) fileError(path, p string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		d.errorf(path, "%s does not exist%s", p, d.unexpanded(p))
		return
	}
	d.errorf(path, "%w", err)
}

// unexpanded is a hint for a path that does not exist, resolved from a
// value that a shell would have expanded ("~/x", "$HOME/x"): nothing
// expands them here, and "~/x" is taken relative to the config.
func (d *decoder) unexpanded(p string) string {
	if rel, err := filepath.Rel(d.base, p); err == nil && strings.HasPrefix(rel, "~") {
		return " (~ is not expanded in the config: write the whole path, such as /home/USER/...)"
	}
	if v := shellVariable.FindString(p); v != "" {
		return " (" + v + " is not expanded in the config: write the whole path)"
	}
	return ""
}

// dir resolves p and checks that it is a directory this process can list.
func (d *decoder) dir(path, p string) string {
	if p == "" {
		d.errorf(path, "empty path")
		return ""
	}
	p = d.resolve(p)
	f, err := os.Open(p)
	if err != nil {
		d.fileError(path, p, err)
		return p
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		d.errorf(path, "%s is not a directory", p)
		return p
	}
	if _, err := f.Readdirnames(1); err != nil && err != io.EOF {
		d.errorf(path, "%w", err)
	}
	return p
}

// readableFile resolves p and checks that it is a file this process can
// open.
func (d *decoder) readableFile(path, p string) string {
	if p == "" {
		d.errorf(path, "empty path")
		return ""
	}
	p = d.resolve(p)
	f, err := os.Open(p)
	if err != nil {
		d.fileError(path, p, err)
		return p
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		d.errorf(path, "%s is not a regular file", p)
	}
	return p
}

// pemFile resolves p and checks that it holds PEM certificates.
func (d *decoder) pemFile(path, p string) string {
	p = d.readableFile(path, p)
	data, err := os.ReadFile(p)
	if err != nil {
		return p // reported by readableFile
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		d.errorf(path, "%s holds no PEM certificate", p)
	}
	return p
}

// storage resolves p and checks that it is a directory if it exists; the
// library creates it otherwise. A database URL is checked (databaseURL)
// and kept as it is, its scheme in lower case. A value that is surely not
// a directory the user meant (notDirectory) is refused, never resolved.
func (d *decoder) storage(path, p string) string {
	if p == "" {
		d.errorf(path, "empty path")
		return ""
	}
	if IsDatabaseURL(p) {
		scheme, rest, _ := strings.Cut(p, "://")
		p = strings.ToLower(scheme) + "://" + rest
		d.databaseURL(path, p)
		return p
	}
	if d.notDirectory(path, p) {
		return ""
	}
	p = d.resolve(p)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
		d.errorf(path, "%s is not a directory", p)
	}
	return p
}

// accessLog checks an access_log value and resolves a file path.
func (d *decoder) accessLog(path, v string) string {
	switch v {
	case "stdout", "stderr", "off":
		return v
	case "":
		d.errorf(path, "want stdout, stderr, off or a file path")
		return v
	}
	for _, kw := range []string{"stdout", "stderr", "off"} {
		if strings.EqualFold(v, kw) {
			d.errorf(path, "%q: write %q in lower case (or \"./%s\" for a file of that name)", v, kw, v)
			return v
		}
	}
	p := d.resolve(v)
	if fi, err := os.Stat(filepath.Dir(p)); err == nil && !fi.IsDir() {
		d.errorf(path, "%s: %s is not a directory", v, filepath.Dir(p))
	} else if err != nil {
		d.errorf(path, "%s: directory %s does not exist%s", v, filepath.Dir(p), d.unexpanded(p))
	} else if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		d.errorf(path, "%s is a directory: want a file in it, such as %s", p, filepath.Join(p, "tlspilot.log"))
	}
	return p
}

// email checks an account contact address (no display name).
func (d *decoder) email(path, v string) {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v {
		d.errorf(path, "%q is not an email address", v)
	}
}

// caURL checks an ACME directory URL.
func (d *decoder) caURL(path, v string) {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		d.errorf(path, "%q: want an https:// ACME directory URL, or letsencrypt or letsencrypt-staging", v)
		return
	}
	d.urlPort(path, v, u)
}

// urlPort refuses a URL (v, parsed as u) whose port no server can listen
// on: url.Parse takes any digits (0, 99999), and the connection failed
// only when the URL was used.
func (d *decoder) urlPort(path, v string, u *url.URL) {
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			d.errorf(path, "%q: port %s is not from 1 to 65535", v, p)
		}
	}
}

// upstream checks a proxy upstream base URL.
func (d *decoder) upstream(path, v string) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		d.errorf(path, "%q: not a URL", v)
	case u.Scheme != "http" && u.Scheme != "https":
		d.errorf(path, "%q: want an http:// or https:// upstream URL", v)
	case u.Host == "" || u.Hostname() == "":
		d.errorf(path, "%q: the upstream URL has no host", v)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		d.errorf(path, "%q: an upstream URL has no user, query or fragment", v)
	case strings.HasSuffix(u.Host, ":"):
		d.errorf(path, "%q: the port is empty", v)
	case u.Port() != "":
		if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
			d.errorf(path, "%q: port %s is not from 1 to 65535", v, u.Port())
		}
	}
}

// upstreamPaths refuses upstreams of one proxy (urls, written at paths)
// whose URL paths differ, as the server does when it starts ("all
// upstreams of one handler must have the same path"): a request goes to
// any of them under the same path. "http://a:1" and "http://b:1/" are
// the same: both add nothing to the request path.
func (d *decoder) upstreamPaths(paths, urls []string) {
	first, firstPath := -1, ""
	for i, v := range urls {
		u, err := url.Parse(v)
		switch {
		case err != nil:
		case first < 0:
			first, firstPath = i, u.Path
		case basePath(u.Path) != basePath(firstPath):
			d.errorf(paths[i], "%q: its path %q is not %q, the path of %s: a request goes to any upstream of a site or route under the same path",
				v, u.Path, firstPath, paths[first])
		}
	}
}

// basePath is an upstream URL's path as the proxy puts requests under
// it: "" and "/" both add nothing.
func basePath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// redirect checks a redirect target: an absolute http(s) URL in which
// "{uri}" is the only placeholder.
func (d *decoder) redirect(path, v string) {
	s := strings.ReplaceAll(v, "{uri}", "/")
	if strings.ContainsAny(s, "{}") {
		d.errorf(path, "%q: the only placeholder is {uri}", v)
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		d.errorf(path, "%q: want an absolute http:// or https:// URL", v)
		return
	}
	d.urlPort(path, v, u)
}

// listen checks a host:port listen address.
func (d *decoder) listen(path, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		d.errorf(path, "%q: want host:port, such as \":443\" or \"127.0.0.1:8443\"", v)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		d.errorf(path, "%q: port %q is not a number from 0 to 65535", v, port)
	}
	if strings.ContainsAny(host, " /[]") {
		d.errorf(path, "%q: bad host %q", v, host)
	}
}

// hostPort checks a host:port address and adds defPort when no port is
// given.
func (d *decoder) hostPort(path, v, defPort string) string {
	if net.ParseIP(v) != nil || !strings.Contains(v, ":") {
		v = net.JoinHostPort(v, defPort)
	}
	host, port, err := net.SplitHostPort(v)
	n, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || strings.ContainsAny(host, " /") {
		d.errorf(path, "%q: want host:port, such as \"127.0.0.1:53\"", v)
	}
	return v
}

// user checks that a user name or id exists here.
func (d *decoder) user(path, v string) {
	d.principal(path, "user", v, func(id string) error {
		_, err := user.LookupId(id)
		return err
	}, func(name string) error {
		_, err := user.Lookup(name)
		return err
	})
}

// group checks that a group name or id exists here.
func (d *decoder) group(path, v string) {
	d.principal(path, "group", v, func(id string) error {
		_, err := user.LookupGroupId(id)
		return err
	}, func(name string) error {
		_, err := user.LookupGroup(name)
		return err
	})
}

// principal checks a user or group (kind) written as a name or, when
// strconv.Atoi reads it as the commands do, as a numeric id. An id must
// be written as the system writes it: the C library reads ids as 32-bit
// unsigned numbers, so "4294967296" is uid 0 and "4294968296" uid 1000,
// and "00", "+0" and "-0" are 0 too; each would silently stand for
// another user, root most of all.
func (d *decoder) principal(path, kind, v string, byID, byName func(string) error) {
	if _, err := strconv.Atoi(v); err != nil {
		if byName(v) != nil {
			d.errorf(path, "%q: no such %s", v, kind)
		}
		return
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == math.MaxUint32 || strconv.FormatUint(n, 10) != v {
		d.errorf(path, "%q: a numeric %s id is written in decimal from 0 to 4294967294, with no sign or leading zero", v, kind)
		return
	}
	if byID(v) != nil {
		d.errorf(path, "%q: no such %s", v, kind)
	}
}
