package certbot

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
)

// Settings are the certbot renewal settings of a lineage that tlspilot
// has an equivalent for, in the words of tlspilot's [[certificate]].
type Settings struct {
	// KeyType is the key type of the current key ("ecdsa-p256",
	// "rsa2048", …): what certbot would make again (it makes a new key
	// at every renewal unless reuse_key is set).
	KeyType string
	// Challenge is "http-01".
	Challenge string
	// ChallengeDir is the directory served at
	// /.well-known/acme-challenge/ (authenticator webroot), or "".
	ChallengeDir string
	// Standalone is the host:port certbot's standalone authenticator
	// listened on, or "".
	Standalone string
	// Reload is the deploy hook ("renew_hook") or post hook as an argv,
	// when it is a plain command; nil otherwise.
	Reload []string
	// Notes are settings left behind, each saying why.
	Notes []string
}

// Settings maps the lineage's renewal settings onto tlspilot's. What
// cannot be carried over without changing how renewal works is an error
// naming the file, line and key, with what to do instead.
func (l *Lineage) Settings() (Settings, error) {
	s := Settings{Challenge: "http-01"}
	var err error
	if s.KeyType, err = keyType(l); err != nil {
		return s, err
	}
	if err := l.authenticator(&s); err != nil {
		return s, err
	}
	if err := l.hooks(&s); err != nil {
		return s, err
	}
	l.notes(&s)
	return s, nil
}

// keyType names the current key's type; certbot writes only types
// tlspilot supports, except P-521.
func keyType(l *Lineage) (string, error) {
	switch k := l.Key.Public().(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().Name {
		case "P-256":
			return "ecdsa-p256", nil
		case "P-384":
			return "ecdsa-p384", nil
		}
		return "", l.Conf.Errorf("", "privkey", "%s: ECDSA curve %s is not supported (ecdsa-p256 or ecdsa-p384): renew it with certbot --elliptic-curve secp384r1 first", l.Privkey, k.Curve.Params().Name)
	case *rsa.PublicKey:
		switch bits := k.N.BitLen(); bits {
		case 2048, 3072, 4096:
			return fmt.Sprintf("rsa%d", bits), nil
		default:
			return "", l.Conf.Errorf("", "privkey", "%s: RSA %d bits is not supported (2048, 3072 or 4096)", l.Privkey, bits)
		}
	}
	return "", l.Conf.Errorf("", "privkey", "%s: unsupported key type %T", l.Privkey, l.Key.Public())
}

// authenticator maps certbot's authenticator onto a way to answer
// http-01.
func (l *Lineage) authenticator(s *Settings) error {
	const sec = "renewalparams"
	switch a := l.Authenticator; {
	case a == "standalone":
		port := l.Param("http01_port")
		if port == "" {
			port = "80"
		}
		s.Standalone = net.JoinHostPort(l.Param("http01_address"), port)
		if pc := l.Param("pref_challs"); pc != "" && !strings.Contains(pc, "http-01") {
			return l.Conf.Errorf(sec, "pref_challs", "%q: tlspilot answers standalone challenges by http-01 only; remove pref_challs or renew with certbot --preferred-challenges http first", pc)
		}
	case a == "webroot":
		root, err := l.webroot()
		if err != nil {
			return err
		}
		s.ChallengeDir = filepath.Join(root, ".well-known", "acme-challenge")
	case a == "":
		return l.Conf.Errorf(sec, "authenticator", "missing: the conf does not say how certbot answers challenges")
	case strings.HasPrefix(a, "dns"):
		return l.Conf.Errorf(sec, "authenticator", "%q: certbot's DNS plugins and their credentials cannot be carried over; configure [dns] (provider rfc2136 or exec, docs/config.md), then add the [[certificate]] by hand with challenge = \"dns-01\"", a)
	case a == "nginx" || a == "apache":
		return l.Conf.Errorf(sec, "authenticator", "%q: tlspilot does not edit the %s config; serve /.well-known/acme-challenge/ from a directory in %[2]s, then run certbot once with --webroot -w DIR (or add the [[certificate]] by hand with challenge_dir)", a, a)
	default:
		return l.Conf.Errorf(sec, "authenticator", "%q: tlspilot has no equivalent; it answers http-01 with files (webroot: challenge_dir) or its own listener (standalone), or dns-01", a)
	}
	return nil
}

// webroot returns the single webroot of the lineage's names.
func (l *Lineage) webroot() (string, error) {
	var roots []string
	for _, v := range l.Conf.Sections["renewalparams.webroot_map"] {
		roots = append(roots, v.Raw)
	}
	if v, ok := l.Conf.Get("renewalparams", "webroot_path"); ok {
		roots = append(roots, v.List...)
		if v.List == nil && v.Raw != "" {
			roots = append(roots, v.Raw)
		}
	}
	slices.Sort(roots)
	roots = slices.Compact(roots)
	switch {
	case len(roots) == 0:
		return "", l.Conf.Errorf("renewalparams", "webroot_path", "missing: authenticator webroot needs a webroot")
	case len(roots) > 1:
		return "", l.Conf.Errorf("renewalparams", "webroot_map", "names are validated from %d webroots (%s); tlspilot writes a certificate's answers to one challenge_dir: serve /.well-known/acme-challenge/ of every name from one directory, or split the certificate", len(roots), strings.Join(roots, ", "))
	case !filepath.IsAbs(roots[0]):
		return "", l.Conf.Errorf("renewalparams", "webroot_path", "%q is not an absolute path", roots[0])
	}
	return roots[0], nil
}

// hooks maps certbot's renewal hooks. A deploy hook (certbot stores
// --deploy-hook as renew_hook) or post hook that is a plain command
// becomes the reload; a pre hook cannot be carried over (tlspilot runs
// nothing before renewing), nor a command that needs a shell.
func (l *Lineage) hooks(s *Settings) error {
	const sec = "renewalparams"
	if h := l.Param("pre_hook"); h != "" {
		return l.Conf.Errorf(sec, "pre_hook", "%q: tlspilot runs no command before renewing (if it stops a web server to free port 80, serve /.well-known/acme-challenge/ from a directory and use --webroot instead); remove pre_hook (and the matching post_hook) from the conf to import", h)
	}
	deployHook, postHook := l.Param("renew_hook"), l.Param("post_hook")
	key, hook := "renew_hook", deployHook
	switch {
	case deployHook == "" && postHook == "":
		return nil
	case deployHook == "":
		key, hook = "post_hook", postHook
	case postHook != "" && postHook != deployHook:
		return l.Conf.Errorf(sec, "post_hook", "%q beside renew_hook %q: tlspilot runs one reload command; keep one of them in the conf to import", postHook, deployHook)
	}
	argv, ok := plainCommand(hook)
	if !ok {
		return l.Conf.Errorf(sec, key, "%q needs a shell; tlspilot runs a command without one (reload = [\"…\"]): make it one plain command, or a script, and import again", hook)
	}
	s.Reload = argv
	return nil
}

// plainCommand splits a hook into words when it has no shell syntax:
// no quotes, variables, redirections, globs or command separators.
func plainCommand(h string) ([]string, bool) {
	if strings.ContainsAny(h, "\"'`$&|;<>(){}*?[]~\\#!\n") {
		return nil, false
	}
	f := strings.Fields(h)
	return f, len(f) > 0
}

// notes lists the settings that are left behind.
func (l *Lineage) notes(s *Settings) {
	if v, ok := l.Conf.Get("", "renew_before_expiry"); ok && v.Raw != "" {
		s.Notes = append(s.Notes, fmt.Sprintf("%s:%d: renew_before_expiry = %s not carried over: tlspilot renews in the CA's renewal window (ARI), else with a third of the lifetime left", l.Conf.File, v.Line, v.Raw))
	}
	for _, n := range []struct{ key, why string }{
		{"preferred_chain", "tlspilot uses the CA's default chain"},
		{"reuse_key", "tlspilot makes a new key for every certificate"},
		{"must_staple", "tlspilot does not ask for OCSP Must-Staple"},
	} {
		v, ok := l.Conf.Get("renewalparams", n.key)
		if !ok || v.Raw == "" || strings.EqualFold(v.Raw, "false") || strings.EqualFold(v.Raw, "none") {
			continue
		}
		s.Notes = append(s.Notes, fmt.Sprintf("%s:%d: %s = %s not carried over: %s", l.Conf.File, v.Line, n.key, v.Raw, n.why))
	}
}
