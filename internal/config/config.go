// Package config reads tlspilot's TOML config file into typed values.
//
// Every problem is reported with the file, line and key path, in the form
// "tlspilot.toml:14: site[2].roots: unknown key": unknown keys, wrong
// types, bad URLs, names and durations, a name claimed by two sites, a
// root that cannot be read. A Config returned without error has every
// default filled in and every relative path resolved against the
// directory of the config file, so callers never look at the file again.
// What this package cannot know (whether ports can be bound, whether the
// CA answers) is checked by the command when it starts, which reports it
// at the same place with Config.Errorf. Load keeps no state between
// calls, so a reload is another Load.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/tlspilot/tlspilot/internal/renewal"
)

// Config is a whole config file, with defaults applied.
type Config struct {
	// File is the path the config was read from.
	File string

	// Email is the ACME account contact ("email"), optional.
	Email string
	// CA is the ACME directory URL ("ca"), always https. Default:
	// Let's Encrypt production.
	CA string
	// CARoots are PEM files of extra roots trusted for the CA's own API
	// ("ca_root": a path or a list). Each holds at least one certificate.
	CARoots []string
	// AgreeTerms agrees to the CA's terms of service ("agree_terms").
	AgreeTerms bool
	// KeepDeactivatedAccount forbids replacing an ACME account the CA
	// deactivated or revoked ("keep_deactivated_account"); by default a
	// new account with a new key replaces it.
	KeepDeactivatedAccount bool
	// EABKeyID and EABHMACFile bind the account to one the CA knows
	// ("eab_key_id", "eab_hmac_file": a file holding the base64url HMAC
	// key); both or neither.
	EABKeyID, EABHMACFile string
	// Profile is the ACME profile to request ("profile"), empty for the
	// CA's default.
	Profile string
	// Storage is the storage ("storage"): a directory, or a postgres:// or
	// postgresql:// URL of a PostgreSQL database (StorageIsDatabase), which
	// never holds a password; empty means the library's default, a
	// per-user data directory.
	Storage string
	// KEKFile is the key-encryption key file ("kek_file"), absolute;
	// empty means the storage directory's "kek". Required, and existing,
	// with a database storage.
	KEKFile string

	// HTTPListen and HTTPSListen are host:port addresses ("http_listen",
	// "https_listen"). Defaults ":80" and ":443".
	HTTPListen, HTTPSListen string
	// User and Group are who serve runs as after binding its ports
	// ("user", "group"): names or numeric ids, known to this system.
	// Empty: privileges are not changed.
	User, Group string
	// ChallengeDir is a directory of http-01 answer files that another
	// process writes (`tlspilot certs` with a [[certificate]] of the same
	// challenge_dir), which serve answers at
	// /.well-known/acme-challenge/<token> ("challenge_dir"); empty for
	// none. It exists when the config is loaded. Restart only.
	ChallengeDir string
	// AccessLog is "stdout" (default), "stderr", "off", or an absolute
	// file path ("access_log").
	AccessLog string
	// LogLevel is "debug", "info" (default), "warn" or "error"
	// ("log_level").
	LogLevel string
	// LogFormat is "text" (default: key=value lines) or "json"
	// ("log_format").
	LogFormat string
	// LogFile is where the daemon's own log goes ("log_file"): "stderr"
	// (default), "stdout" or an absolute file path, reopened on SIGUSR1.
	LogFile string
	// AdminListen is the admin listener's host:port ("admin_listen":
	// health, status, metrics, profiles), or AdminOff. Default
	// DefaultAdminListen. It is a loopback address unless
	// AdminAllowRemote ("admin_allow_remote", default false) is set.
	AdminListen      string
	AdminAllowRemote bool
	// AdminHosts ("admin_hosts") are the host names a loopback admin
	// listener answers in Host besides IP literals, localhost and its own
	// address's name: those a reverse proxy in front passes on.
	AdminHosts []string
	// CertsAdminListen is the admin listener of the `tlspilot certs`
	// daemon ("certs_admin_listen"), or AdminOff. Default: AdminListen
	// when the file has no [[site]] tables, else AdminOff (serve, run
	// from the same file, holds AdminListen).
	CertsAdminListen string
	// Notify configures the hooks told about certificate events
	// ("notify_command", "notify_webhook", "notify_webhook_secret_file",
	// "notify_timeout"); nil when there are none.
	Notify *Notify
	// WarnWindow is how long before expiry a certificate whose renewal
	// keeps failing is reported as expiring ("warn_window": a percentage
	// of the lifetime, days or a duration: "10%" (default), "7d", "72h").
	WarnWindow renewal.WarnWindow

	// KeyTypes are the default key types of certificates ("key_type": a
	// name or a list of them for dual certificates), in canonical
	// spelling, without duplicates. Default ["ecdsa-p256"].
	KeyTypes []string
	// Challenge is the default challenge type ("challenge"): "http-01"
	// (default), "tls-alpn-01" or "dns-01".
	Challenge string
	// DNS configures the dns-01 provider ("[dns]"); nil when absent. It
	// is required when any site uses dns-01.
	DNS *DNS

	// TLSProfile is the default Mozilla TLS profile of sites
	// ("tls_profile"): "intermediate" (default: TLS 1.2 with ECDHE and
	// AEAD suites, and TLS 1.3) or "modern" (TLS 1.3 only).
	TLSProfile string
	// MaxConnections caps the client connections served at once
	// ("max_connections"); 0 (default) derives the cap from the file
	// descriptor limit. Restart only.
	MaxConnections int

	// IssuerListen is where the fleet issuer's API listens
	// ("issuer_listen": host:port), empty when this host is no issuer;
	// IssuerNames are the names or IP addresses agents reach it by
	// ("issuer_names"), normalised, which its server certificate covers.
	// Both or neither.
	IssuerListen string
	IssuerNames  []string

	// Sites are the [[site]] tables in file order.
	Sites []Site
	// Certificates are the [[certificate]] tables in file order: the
	// certificates `tlspilot certs` keeps for other software.
	Certificates []Certificate

	pos *positions // where each key is written, for Errorf
}

// Errorf returns an *Error for a problem found after loading, such as a
// port that cannot be bound, at key (a path as in Error.Key: "https_listen",
// "site[2].root") and the line where it is written, else the line of the
// closest enclosing table written in the file, else 0 (a top-level
// default).
func (c *Config) Errorf(key, format string, args ...any) *Error {
	line := 0
	if c.pos != nil {
		line = c.pos.line(key)
	}
	return &Error{File: c.File, Line: line, Key: key, Err: fmt.Errorf(format, args...)}
}

// Site is one [[site]]: the names it answers for, how it gets its
// certificate, and what it serves.
type Site struct {
	// Line is where the site's table starts, for messages.
	Line int
	// Names are normalised (ASCII, lower case, no trailing dot; "*."
	// for a wildcard) and unique across all sites ("names": a name or
	// a list). Never empty.
	Names []string

	// At most one of Root, Proxy and Redirect is set. A site with none
	// answers 404 except where a route matches.
	//
	// Root is an absolute path to a readable directory of static files.
	Root string
	// Proxy lists upstream base URLs (http or https), tried in turn.
	Proxy []string
	// ProxyTLS is how Proxy's https:// upstreams are checked.
	ProxyTLS ProxyTLS
	// Redirect is an absolute http(s) URL; "{uri}" in it stands for the
	// request's path and query.
	Redirect string
	// Routes split the site by path prefix; the longest matching Path
	// wins, the site's own Root, Proxy or Redirect serves the rest.
	Routes []Route

	// CertFile and KeyFile, when set (always both), hold a certificate
	// managed elsewhere, re-read when they change; no ACME for this
	// site, and Challenge and KeyTypes are empty.
	CertFile, KeyFile string
	// CertFilesMissing is set when CertFile or KeyFile did not exist
	// when the config was loaded (another process is to write them):
	// serve then presents a temporary certificate until both exist.
	// Files that exist are checked: readable, a matching pair covering
	// the names.
	CertFilesMissing bool
	// Challenge is the effective challenge type: the site's own
	// "challenge", else the global one.
	Challenge string
	// KeyTypes are the effective key types: the site's own "key_type",
	// else the global ones.
	KeyTypes []string

	// Default marks the site that serves handshakes with no or an
	// unknown server name ("default"); at most one site has it.
	Default bool
	// HTTPRedirect redirects plain HTTP requests to HTTPS
	// ("http_redirect", default true); when false, the site is served
	// over plain HTTP too.
	HTTPRedirect bool
	// HSTS adds Strict-Transport-Security ("hsts").
	HSTS bool
	// CSP is the Content-Security-Policy header value ("csp"), empty for
	// none.
	CSP string
	// Headers are extra response headers ("[site.headers]"), names as
	// written.
	Headers map[string]string
	// TLSProfile is the effective TLS profile: the site's own
	// "tls_profile", else the global one.
	TLSProfile string
	// TrustedProxies are the networks of proxies in front of this site
	// ("trusted_proxies": CIDR prefixes or addresses), whose forwarding
	// headers (X-Forwarded-*, X-Real-IP, …) are passed to upstreams;
	// from any other client they are removed.
	TrustedProxies []netip.Prefix
	// ClientAuth asks clients for certificates ("[site.client_auth]");
	// nil when the site does not.
	ClientAuth *ClientAuth
	// NoOCSPStapling is set by "ocsp_stapling = false" (default true):
	// no OCSP response is stapled to this site's certificate even when
	// it names a responder.
	NoOCSPStapling bool
}

// Route is one [[site.route]]: a path prefix served its own way.
type Route struct {
	// Line is where the route's table starts, for messages.
	Line int
	// Path is the prefix matched, starting with "/"; unique in its site.
	Path string
	// Exactly one of Root, Proxy and Redirect is set, with the same
	// meaning as on Site.
	Root     string
	Proxy    []string
	ProxyTLS ProxyTLS
	Redirect string
}

// ProxyTLS is how a proxy checks the certificates of its https://
// upstreams; the zero value checks them as a browser would, against the
// system's roots and for each URL's host. Either field needs a proxy with
// an https:// upstream.
type ProxyTLS struct {
	// CAFile ("proxy_ca") is an absolute path to a PEM file of the CA
	// certificates an upstream's certificate must chain to, instead of
	// the system's roots: upstreams with certificates of a private CA
	// (nginx: proxy_ssl_trusted_certificate with proxy_ssl_verify on;
	// Caddy: tls_trust_pool file).
	CAFile string
	// ServerName ("proxy_server_name") is the name sent in SNI and
	// looked for in an upstream's certificate instead of the URL's host,
	// normalised as site names are: for an upstream reached by address
	// whose certificate names a host (nginx: proxy_ssl_name; Caddy:
	// tls_server_name).
	ServerName string
}

// DNS is the [dns] table: the dns-01 provider and how propagation is
// checked. Zero durations and ports mean the provider's defaults.
type DNS struct {
	// Provider is "rfc2136" or "exec".
	Provider string
	// Server is where rfc2136 updates go, as host:port (":53" added when
	// no port is given).
	Server string
	// TSIGKey is the rfc2136 key name; TSIGAlgorithm "hmac-sha256"
	// (default) or "hmac-sha512".
	TSIGKey, TSIGAlgorithm string
	// TSIGSecretFile is an absolute path to the file holding the TSIG
	// secret, which only its owner may read or write.
	TSIGSecretFile string
	// TSIGSecretEnv names an environment variable holding the secret
	// ("tsig_secret_env"), instead of TSIGSecretFile.
	TSIGSecretEnv string
	// Zone is the zone to update, normalised; empty means found by
	// walking up to the SOA.
	Zone string
	// Command is the exec provider's program; a path containing a slash
	// is resolved against the config's directory and is an executable
	// file, a bare name was found in PATH when the config was loaded.
	Command string
	// Timeout bounds each run of the exec provider's command.
	Timeout time.Duration
	// Resolvers are host:port servers used to find zones, NS sets and
	// CNAMEs; empty means the system's.
	Resolvers []string
	// AuthoritativePort is the port on which authoritative servers are
	// asked.
	AuthoritativePort int
	// PropagationTimeout bounds the wait for every authoritative server
	// to serve a record.
	PropagationTimeout time.Duration
}

// The places DefaultPath looks, in order.
const (
	LocalPath  = "tlspilot.toml"
	SystemPath = "/etc/tlspilot/tlspilot.toml"
)

// DefaultPath returns the config file to use when none is named:
// LocalPath if it exists, else SystemPath if it exists, else an error
// naming both.
func DefaultPath() (string, error) {
	for _, p := range []string{LocalPath, SystemPath} {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config: %w", err)
		}
	}
	return "", fmt.Errorf("config: no config file: neither ./%s nor %s exists", LocalPath, SystemPath)
}

// Load reads, parses and checks the config file at path. The error is an
// ErrorList when the file was read but rejected.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// newDecoder parses data, read from the file called name, as TOML, and
// returns a decoder resolving relative paths against name's directory.
func newDecoder(name string, data []byte) (*decoder, map[string]any, error) {
	data = withoutBOM(data)
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, nil, syntaxError(name, data, err)
	}
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return &decoder{file: name, base: dir, pos: indexPositions(data)}, doc, nil
}

// Parse parses and checks data, read from the file called name. Relative
// paths in it are resolved against name's directory, and the files and
// directories it names are checked on this machine. A rejected config
// gives an ErrorList holding every problem found.
func Parse(name string, data []byte) (*Config, error) {
	d, doc, err := newDecoder(name, data)
	if err != nil {
		return nil, err
	}
	c := d.config(doc)
	c.pos = d.pos
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return c, nil
}

// withoutBOM drops a UTF-8 byte order mark, which Windows editors put
// at the start of a file and go-toml takes for the start of a key. It
// takes no line of its own, so lines stay as the editor shows them.
func withoutBOM(data []byte) []byte {
	return bytes.TrimPrefix(data, []byte("\ufeff"))
}

// syntaxError converts go-toml's error into an ErrorList of one. go-toml
// names a key defined twice within its table ("tsig_key"): the key is
// given its full path ("dns.tsig_key"), as every other error has.
func syntaxError(name string, data []byte, err error) error {
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return ErrorList{{File: name, Err: err}}
	}
	line, _ := de.Position()
	key := ""
	if len(de.Key()) > 0 {
		key = tableAt(data, line)
	}
	for _, k := range de.Key() {
		key = joinKey(key, k)
	}
	return ErrorList{{File: name, Line: line, Key: key, Err: de}}
}
