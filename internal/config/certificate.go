package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tlspilot/tlspilot"
	"github.com/tlspilot/tlspilot/internal/deploy"
)

// Certificate is one [[certificate]]: a certificate that `tlspilot
// certs` keeps for other software (nginx, Postfix, …), written to PEM
// files, with how that software is told to read them again.
type Certificate struct {
	// Line is where the table starts, for messages.
	Line int
	// Names are normalised as for sites and unique across every site and
	// certificate ("names"). Never empty.
	Names []string
	// KeyTypes are the effective key types: the table's own "key_type",
	// else the global ones. With several, each file path gets the key
	// type inserted before its extension (see DeployPath).
	KeyTypes []string
	// Challenge is the effective challenge type: the table's own
	// "challenge", else the global one.
	Challenge string
	// ChallengeDir, for http-01, is a directory another web server
	// serves at /.well-known/acme-challenge/; answers are written there
	// as files (0644), removed after validation ("challenge_dir").
	ChallengeDir string
	// Standalone is a host:port where http-01 or tls-alpn-01 answers are
	// served by a listener of their own, open only while validating
	// ("standalone").
	Standalone string
	// The deployed files, absolute paths, each empty when not wanted
	// ("fullchain", "privkey", "cert", "chain", "combined"). At least one
	// is set.
	Fullchain, Privkey, Cert, Chain, Combined string
	// Owner and Group of the deployed files ("owner", "group"); empty:
	// the running user and its group.
	Owner, Group string
	// Mode of Privkey and Combined ("mode", octal as a string, such as
	// "0640"); 0 means the default, 0600. The other files are 0644.
	Mode fs.FileMode
	// Reload is the command run after files changed ("reload": argv, no
	// shell). Alternatively ReloadSignal ("reload_signal", canonical
	// name such as "HUP") is sent to the process whose id is in PIDFile
	// ("pidfile"). At most one way is set.
	Reload       []string
	ReloadSignal string
	PIDFile      string
}

// certificate decodes one [[certificate]] table; global supplies the
// defaults and written maps each deploy path to the key that writes it.
func (d *decoder) certificate(t *table, global *Config, written map[string]string) Certificate {
	c := Certificate{Line: d.pos.line(t.path)}
	var site Site
	var namePaths []string
	if _, present := t.m["names"]; present {
		namePaths = d.siteNames(t, &site)
	} else {
		d.errorf(t.key("names"), "required: the names this certificate covers")
	}
	c.Names = site.Names
	d.certACME(t, &c, global)
	site.Challenge = c.Challenge
	d.challengeWay(t, &c)
	d.deployFiles(t, &c, written)
	d.deployAccess(t, &c)
	d.reload(t, &c)
	t.done()
	site.Names = c.Names
	d.claim(t.path, namePaths, &site)
	return c
}

// certACME decodes the certificate's own challenge and key types, or
// takes the global ones.
func (d *decoder) certACME(t *table, c *Certificate, global *Config) {
	c.Challenge = global.Challenge
	if t.str("challenge", &c.Challenge) {
		d.challenge(t.key("challenge"), &c.Challenge)
		if c.Challenge == tlspilot.DNS01 && global.DNS == nil {
			d.errorf(t.key("challenge"), "dns-01 needs a [dns] table")
		}
	}
	c.KeyTypes = slices.Clone(global.KeyTypes)
	if paths, ok := t.strings("key_type", &c.KeyTypes); ok {
		c.KeyTypes = d.keyTypes(t.key("key_type"), paths, c.KeyTypes)
	}
}

// challengeWay decodes challenge_dir and standalone.
func (d *decoder) challengeWay(t *table, c *Certificate) {
	if t.str("challenge_dir", &c.ChallengeDir) {
		c.ChallengeDir = d.existingDir(t.key("challenge_dir"), c.ChallengeDir)
		if c.Challenge != tlspilot.HTTP01 {
			d.errorf(t.key("challenge_dir"), "only for http-01 (this certificate uses %s)", c.Challenge)
		}
	}
	if t.str("standalone", &c.Standalone) {
		d.listen(t.key("standalone"), c.Standalone)
		switch {
		case c.ChallengeDir != "":
			d.errorf(t.key("standalone"), "challenge_dir and standalone are exclusive: answers are served one way")
		case c.Challenge == tlspilot.DNS01:
			d.errorf(t.key("standalone"), "only for http-01 and tls-alpn-01 (this certificate uses dns-01)")
		}
	}
}

// deployFiles decodes the paths of the deployed files.
func (d *decoder) deployFiles(t *table, c *Certificate, written map[string]string) {
	some := false
	for _, f := range []struct {
		key string
		dst *string
	}{{"fullchain", &c.Fullchain}, {"privkey", &c.Privkey}, {"cert", &c.Cert}, {"chain", &c.Chain}, {"combined", &c.Combined}} {
		if !t.str(f.key, f.dst) {
			continue
		}
		some = true
		*f.dst = d.deployPath(t.key(f.key), *f.dst)
		for _, kt := range c.KeyTypes {
			p := DeployPath(*f.dst, kt, len(c.KeyTypes))
			if p != *f.dst {
				d.notDir(t.key(f.key), p)
			}
			if other, dup := written[p]; dup {
				d.errorf(t.key(f.key), "%s is already written by %s (line %d)", p, other, d.pos.line(other))
			}
			written[p] = t.key(f.key)
		}
	}
	if !some {
		d.errorf(t.path, "a certificate needs somewhere to go: at least one of fullchain, privkey, cert, chain or combined")
	}
	if (c.Fullchain != "" || c.Cert != "") && c.Privkey == "" && c.Combined == "" {
		d.errorf(t.key(map[bool]string{true: "fullchain", false: "cert"}[c.Fullchain != ""]), "privkey is needed too: the certificate is of no use without its key")
	}
}

// deployPath resolves a deploy path and checks that its directory
// exists. Whether it can be written is found out when writing, by the
// user that writes (the config is also read by users that only read).
func (d *decoder) deployPath(path, p string) string {
	if p == "" {
		d.errorf(path, "empty path")
		return ""
	}
	dirLike := strings.HasSuffix(p, string(filepath.Separator))
	p = d.resolve(p)
	if dirLike {
		d.errorf(path, "%s/ is a directory: name the file", p)
		return p
	}
	switch fi, err := os.Stat(filepath.Dir(p)); {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(path, "directory %s does not exist%s", filepath.Dir(p), d.unexpanded(p))
	case err == nil && !fi.IsDir():
		d.errorf(path, "%s is not a directory", filepath.Dir(p))
	default:
		d.notDir(path, p)
	}
	return p
}

// notDir refuses a file path that names a directory: check passed it,
// and certs found out only once it had a certificate to write (a
// rename over a directory fails), or a signal to send (pidfile).
func (d *decoder) notDir(path, p string) {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		d.errorf(path, "%s is a directory: name the file", p)
	}
}

// existingDir resolves p and checks that it is a directory, if this
// process may look.
func (d *decoder) existingDir(path, p string) string {
	if p == "" {
		d.errorf(path, "empty path")
		return ""
	}
	p = d.resolve(p)
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.errorf(path, "%s does not exist%s", p, d.unexpanded(p))
	case err == nil && !fi.IsDir():
		d.errorf(path, "%s is not a directory", p)
	}
	return p
}

// deployAccess decodes owner, group and mode.
func (d *decoder) deployAccess(t *table, c *Certificate) {
	if t.str("owner", &c.Owner) {
		d.user(t.key("owner"), c.Owner)
	}
	if t.str("group", &c.Group) {
		d.group(t.key("group"), c.Group)
	}
	var mode string
	if !t.str("mode", &mode) {
		return
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	switch {
	case err != nil || m == 0 || m > 0o777:
		d.errorf(t.key("mode"), "%q: want an octal mode such as \"0640\" or \"0600\"", mode)
	case m&0o007 != 0:
		d.errorf(t.key("mode"), "%q: the private key must not be readable or writable by others (want \"0640\" or \"0600\")", mode)
	case m&0o400 == 0:
		d.errorf(t.key("mode"), "%q: the owner must be able to read the key", mode)
	default:
		c.Mode = fs.FileMode(m)
	}
}

// reload decodes reload, or reload_signal with pidfile.
func (d *decoder) reload(t *table, c *Certificate) {
	if _, ok := t.strings("reload", &c.Reload); ok {
		if len(c.Reload) == 0 || c.Reload[0] == "" {
			d.errorf(t.key("reload"), "want a command and its arguments, such as [\"systemctl\", \"reload\", \"nginx\"]")
		} else {
			d.commandString(t, "reload")
		}
	}
	hasSignal := t.str("reload_signal", &c.ReloadSignal)
	if hasSignal {
		if _, err := deploy.ParseSignal(c.ReloadSignal); err != nil {
			d.errorf(t.key("reload_signal"), "%w", err)
		} else {
			c.ReloadSignal = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c.ReloadSignal)), "SIG")
		}
	}
	hasPID := t.str("pidfile", &c.PIDFile)
	if hasPID {
		c.PIDFile = d.deployPath(t.key("pidfile"), c.PIDFile)
	}
	switch {
	case hasSignal != hasPID:
		d.errorf(t.key(map[bool]string{true: "pidfile", false: "reload_signal"}[hasSignal]), "reload_signal and pidfile go together")
	case hasSignal && len(c.Reload) > 0:
		d.errorf(t.key("reload_signal"), "reload and reload_signal are exclusive: the software is reloaded one way")
	}
}

// DeployPath is the path a file of a certificate with n key types is
// written to for key type kt: p itself with one key type, else p with
// the key type before its extension ("privkey.rsa2048.pem").
func DeployPath(p, kt string, n int) string {
	if n <= 1 {
		return p
	}
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + "." + kt + ext
}

// commandString refuses a command key (reload) written as one string
// with blanks in it, as certbot's hooks are: no shell splits it, so it
// would name a program "systemctl reload nginx" that does not exist, and
// fail only at the first deploy. (notify_command is checked by looking
// the program up.) A program whose path has blanks is a list of one.
func (d *decoder) commandString(t *table, k string) {
	v, ok := t.m[k].(string)
	if !ok || !strings.ContainsAny(strings.TrimSpace(v), " \t") {
		return
	}
	quoted := make([]string, 0, 4)
	for _, f := range strings.Fields(v) {
		quoted = append(quoted, strconv.Quote(f))
	}
	d.errorf(t.key(k), "%q is run as one program name, with no shell to split it: write the program and its arguments as a list, [%s]",
		v, strings.Join(quoted, ", "))
}
