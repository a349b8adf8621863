package tlspilot

import (
	"cmp"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/internal/renewal"
	"github.com/tlspilot/tlspilot/storage"
)

// LetsEncrypt is the directory URL of Let's Encrypt's production CA, the
// default.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// LetsEncryptStaging is the directory URL of Let's Encrypt's staging CA.
const LetsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"

// KeyType names a private key algorithm and size.
type KeyType = keys.Type

// The supported key types.
const (
	ECDSAP256 KeyType = keys.ECDSAP256
	ECDSAP384 KeyType = keys.ECDSAP384
	RSA2048   KeyType = keys.RSA2048
	RSA3072   KeyType = keys.RSA3072
	RSA4096   KeyType = keys.RSA4096
)

// ParseKeyType validates a key type name such as "ecdsa-p256" or "rsa2048".
func ParseKeyType(s string) (KeyType, error) { return keys.ParseType(s) }

// The challenge types.
const (
	HTTP01    = "http-01"
	TLSALPN01 = "tls-alpn-01"
	DNS01     = "dns-01"
)

// EAB is an External Account Binding handed out by a CA: a key identifier
// and its HMAC key, base64url-encoded without padding (RFC 8555 §7.3.4).
// New refuses an EAB with either missing or a key it cannot decode.
type EAB struct {
	KeyID   string
	HMACKey string
}

// Config configures a Manager. The zero value of every field is a usable
// default. New refuses, with an error naming the field, a value that
// would only fail later (when an order is placed), and keeps its own
// copy of the slices and structs the Config points to: changing them
// after New changes nothing.
type Config struct {
	// CA is the ACME directory URL. Default: LetsEncrypt.
	CA string
	// CARoots, if set, replaces the system roots for the CA's own HTTPS
	// API (for private or test CAs).
	CARoots *x509.CertPool
	// Email is the account contact, optional: a plain address
	// (addr-spec, RFC 5322 §3.4.1) such as "ops@example.com", without a
	// display name or "mailto:" (tlspilot adds that, RFC 8555 §7.3).
	Email string
	// AgreeTerms agrees to the CA's terms of service. A CA with terms
	// refuses accounts that do not.
	AgreeTerms bool
	// EAB binds the account to an account the CA knows elsewhere.
	EAB *EAB

	// Storage holds certificates, accounts, order progress and challenge
	// answers. Default: files under StorageDir.
	Storage storage.Storage
	// StorageDir is where the default storage lives. Default: the user's
	// data directory ($XDG_DATA_HOME/tlspilot or ~/.local/share/tlspilot).
	StorageDir string
	// KeyFile holds the key that encrypts private keys at rest; it is
	// created on first use (0400). Default: StorageDir/kek. New requires
	// it when Storage is set without StorageDir; ReadStatus and Clean,
	// which open no private key, do not.
	KeyFile string
	// LeaseTTL is the lease of the default storage's locks (default 30s,
	// at least MinLeaseTTL).
	LeaseTTL time.Duration

	// KeyTypes lists the key types of each certificate: one certificate
	// per type for the same names, the handshake picking what the client
	// supports. Default: ECDSAP256.
	KeyTypes []KeyType
	// Challenge is the challenge type solved by default: HTTP01 (the
	// default), TLSALPN01, or DNS01 (which needs DNSProvider).
	Challenge string
	// DNSProvider publishes the TXT records of dns-01 challenges; without
	// it dns-01, and so wildcard names, are refused. dns01/provider builds
	// one from the configuration file's [dns] section.
	DNSProvider dns01.Provider
	// DNSPropagation configures the check, before the CA is asked to
	// validate, that every authoritative server serves the TXT records.
	DNSPropagation dns01.PropagationOptions
	// Profile is the ACME profile requested, empty for the CA's default.
	Profile string

	// Workers bounds the orders in progress at once. Default (0) 16;
	// negative is refused.
	Workers int
	// OrderLimit new orders at most per OrderWindow. Default: 300 per 3h
	// for Let's Encrypt (its published limit per account), 1,000 per
	// minute for other CAs; a field left zero takes its default alone
	// (OrderLimit 10 alone: 10 per minute, or per 3h for Let's Encrypt).
	// Negative values are refused.
	OrderLimit  int
	OrderWindow time.Duration
	// RetryMin and RetryMax set the backoff after a failed attempt.
	// Defaults: 1m and 6h; negative values, and a RetryMin longer than
	// RetryMax (a zero one counting as its default), are refused. The
	// base delay is RetryMin, doubled after each further failure up to
	// RetryMax, and each wait is drawn at random between half the base
	// delay and all of it: the first retry comes between RetryMin/2 and
	// RetryMin after the failure, and no wait exceeds RetryMax, unless
	// the CA's Retry-After is later (then it is kept). A first failure
	// on a nonce the CA rejected (badNonce) is retried after 1 to 2
	// seconds instead.
	RetryMin, RetryMax time.Duration
	// StoragePoll is how often Run looks for certificates that another
	// process sharing the storage stored (`tlspilot renew`, another
	// node), by reading one small record. Default 15s.
	StoragePoll time.Duration

	// WarnWindow is how long before expiry a certificate whose renewal
	// keeps failing is reported as expiring (EventExpiring, state
	// "expiring"). Default: 10% of the lifetime. New refuses a negative
	// Duration and a Fraction outside [0, 1) (25% is 0.25, not 25).
	WarnWindow WarnWindow

	// KeepDeactivatedAccount forbids replacing an ACME account that the
	// CA deactivated or revoked. By default such an account is replaced by
	// a new one with a new key (the old key is kept aside in storage,
	// never overwritten); with this set, every order fails with an error
	// that says so, until an operator acts.
	KeepDeactivatedAccount bool

	// Metrics, if set, receives measurements as they happen (requests to
	// the CA, challenges, DNS propagation); the admin listener implements
	// it with Prometheus.
	Metrics Metrics

	// OnEvent, if set, receives every Event. It is called from the
	// Manager's goroutines and must not block for long. Each call gets
	// its own copy of the slices and values the Event points to, which
	// the handler may change or keep.
	OnEvent func(Event)
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// UserAgent names the program to the CA, first in the User-Agent
	// header, such as "tlspilot/v1.2.0". Default "tlspilot". New refuses
	// control characters (a line break), which no HTTP request may carry.
	UserAgent string

	// caTransport, if set, carries requests to the CA (fault injection
	// in tests).
	caTransport http.RoundTripper
}

// Metrics receives measurements from a Manager. Its methods are called
// from the Manager's goroutines, concurrently, and must return at once.
type Metrics interface {
	// ACMERequest reports one HTTP request to the CA: its endpoint (a
	// fixed set: directory, nonce, new-account, account, new-order,
	// order, authorization, challenge, finalize, certificate,
	// renewal-info, revoke, other), the HTTP status (0 when no answer
	// came) and how long it took.
	ACMERequest(endpoint string, code int, d time.Duration)
	// Challenge reports a challenge the CA validated: its type and
	// whether it succeeded.
	Challenge(typ string, valid bool)
	// DNSPropagation reports how long a dns-01 record took to be served
	// by every authoritative server of its zone.
	DNSPropagation(d time.Duration)
}

// MinLeaseTTL is the shortest Config.LeaseTTL New accepts. A lease is
// renewed every third of it by a synced write of its lock file; the
// write, and retries of a failed one, must fit before the lease runs
// out, or every lock is lost as soon as it is taken (with 1ns, no
// account key could even be read).
const MinLeaseTTL = time.Second

// withDefaults checks the configuration, fills in defaults and copies
// what the caller could change afterwards (slices, pointers to
// structs).
func (c Config) withDefaults() (Config, error) {
	if c.CA == "" {
		c.CA = LetsEncrypt
	}
	u, err := url.Parse(c.CA)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("config: CA %q: want an https:// ACME directory URL", c.CA)
	}
	if err := c.check(); err != nil {
		return c, err
	}
	c = c.copied()
	if c.Storage == nil && c.StorageDir == "" {
		dir, err := defaultStorageDir()
		if err != nil {
			return c, err
		}
		c.StorageDir = dir
	}
	if c.KeyFile == "" && c.StorageDir != "" {
		c.KeyFile = filepath.Join(c.StorageDir, "kek") // New needs one; ReadStatus and Clean do not
	}
	if len(c.KeyTypes) == 0 {
		c.KeyTypes = []KeyType{ECDSAP256}
	}
	if c.StoragePoll <= 0 {
		c.StoragePoll = 15 * time.Second
	}
	for i, kt := range c.KeyTypes {
		if c.KeyTypes[i], err = keys.ParseType(string(kt)); err != nil {
			return c, fmt.Errorf("config: %w", err)
		}
	}
	if c.Challenge == "" {
		c.Challenge = HTTP01
	}
	if err := c.checkChallenge(c.Challenge); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c.Workers == 0 {
		c.Workers = 16
	}
	// Each zero field takes its default alone: a limit given without a
	// window (or the reverse) is kept.
	limit, window := 1000, time.Minute
	if isLetsEncrypt(c.CA) {
		limit, window = 300, 3*time.Hour
	}
	c.OrderLimit, c.OrderWindow = cmp.Or(c.OrderLimit, limit), cmp.Or(c.OrderWindow, window)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// copied returns c with its own copies of the slices and structs it
// points to, so that changing the caller's after New changes nothing.
func (c Config) copied() Config {
	c.KeyTypes = slices.Clone(c.KeyTypes)
	c.DNSPropagation.Resolvers = slices.Clone(c.DNSPropagation.Resolvers)
	if c.EAB != nil {
		eab := *c.EAB
		c.EAB = &eab
	}
	if c.CARoots != nil {
		c.CARoots = c.CARoots.Clone()
	}
	return c
}

// check refuses values no default can stand for, with an error naming
// the field.
func (c Config) check() error {
	if err := checkEmail(c.Email); err != nil {
		return err
	}
	if c.EAB != nil {
		if err := (acmeclient.EAB{KeyID: c.EAB.KeyID, HMACKey: c.EAB.HMACKey}).Check(); err != nil {
			return fmt.Errorf("config: EAB: %w", err)
		}
	}
	if err := acmeclient.CheckUserAgent(c.UserAgent); err != nil {
		return fmt.Errorf("config: UserAgent: %w", err)
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"Storage", c.Storage}, {"DNSProvider", c.DNSProvider}, {"Metrics", c.Metrics}} {
		if isNilPointer(f.v) {
			return fmt.Errorf("config: %s is a nil %T (was the error of its constructor checked?)", f.name, f.v)
		}
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < MinLeaseTTL {
		return fmt.Errorf("config: LeaseTTL %s is shorter than %s (MinLeaseTTL): locks would be lost before their first renewal", c.LeaseTTL, MinLeaseTTL)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"Workers", int64(c.Workers)}, {"OrderLimit", int64(c.OrderLimit)}, {"OrderWindow", int64(c.OrderWindow)},
		{"RetryMin", int64(c.RetryMin)}, {"RetryMax", int64(c.RetryMax)}} {
		if f.v < 0 {
			return fmt.Errorf("config: %s is negative (0 means the default)", f.name)
		}
	}
	if w := c.WarnWindow; w.Duration < 0 || !(w.Fraction >= 0 && w.Fraction < 1) {
		return fmt.Errorf("config: WarnWindow {Fraction: %v, Duration: %s}: want a Fraction of the lifetime between 0 and 1 (0.1 for 10%%) or a positive Duration, zero for the default", w.Fraction, w.Duration)
	}
	lo, hi := cmp.Or(c.RetryMin, renewal.DefaultBackoffMin), cmp.Or(c.RetryMax, renewal.DefaultBackoffMax)
	if lo > hi {
		return fmt.Errorf("config: RetryMin %s is longer than RetryMax %s (a zero field counts as its default)", lo, hi)
	}
	return nil
}

// checkEmail accepts an empty contact or a plain address (addr-spec).
func checkEmail(email string) error {
	if email == "" {
		return nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return fmt.Errorf("config: Email %q: want a plain address (addr-spec) such as ops@example.com, with no display name and no mailto: prefix", email)
	}
	return nil
}

// check refuses Cert options that could only fail when an order needs
// them, naming the field.
func (c Cert) check() error {
	if c.Standalone != "" {
		if _, _, err := net.SplitHostPort(c.Standalone); err != nil {
			return fmt.Errorf("cert field Standalone %q: want host:port or :port: %w", c.Standalone, err)
		}
	}
	if c.ChallengeDir != "" && !filepath.IsAbs(c.ChallengeDir) {
		return fmt.Errorf("cert field ChallengeDir %q: want an absolute path (the directory the web server serves)", c.ChallengeDir)
	}
	for kt, d := range c.Deployers {
		if isNilPointer(d) {
			return fmt.Errorf("cert field Deployers[%s] is a nil %T (was the error of its constructor checked?)", kt, d)
		}
	}
	return nil
}

// isNilPointer reports whether v, an interface value, holds a nil
// pointer or func: what a constructor returns with its error, which
// would panic at its first use, in the Manager's goroutines.
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Func:
		return rv.IsNil()
	}
	return false
}

func (c Config) checkChallenge(ch string) error {
	switch ch {
	case HTTP01, TLSALPN01:
		return nil
	case DNS01:
		if c.DNSProvider == nil {
			return fmt.Errorf("challenge %q: no dns-01 provider is configured (Config.DNSProvider)", ch)
		}
		return nil
	}
	return fmt.Errorf("unknown challenge %q (want %s, %s or %s)", ch, HTTP01, TLSALPN01, DNS01)
}

func isLetsEncrypt(ca string) bool {
	u, err := url.Parse(ca)
	return err == nil && strings.HasSuffix(u.Hostname(), ".api.letsencrypt.org")
}

func defaultStorageDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "tlspilot"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("config: no StorageDir and no home directory: %w", err)
	}
	return filepath.Join(home, ".local", "share", "tlspilot"), nil
}
