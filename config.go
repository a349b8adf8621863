package tlspilot

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/internal/keys"
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
// and its base64url-encoded HMAC key.
type EAB struct {
	KeyID   string
	HMACKey string
}

// Config configures a Manager. The zero value of every field is a usable
// default.
type Config struct {
	// CA is the ACME directory URL. Default: LetsEncrypt.
	CA string
	// CARoots, if set, replaces the system roots for the CA's own HTTPS
	// API (for private or test CAs).
	CARoots *x509.CertPool
	// Email is the account contact, optional.
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
	// created on first use (0400). Default: StorageDir/kek. Required
	// when Storage is set.
	KeyFile string
	// LeaseTTL is the lease of the default storage's locks (default 30s).
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

	// Workers bounds the orders in progress at once. Default 16.
	Workers int
	// OrderLimit new orders at most per OrderWindow. Default: 300 per 3h
	// for Let's Encrypt (its published limit per account), 1,000 per
	// minute for other CAs.
	OrderLimit  int
	OrderWindow time.Duration
	// RetryMin and RetryMax bound the backoff after a failure. Defaults:
	// 1m and 6h.
	RetryMin, RetryMax time.Duration
	// StoragePoll is how often Run looks for certificates that another
	// process sharing the storage stored (`tlspilot renew`, another
	// node), by reading one small record. Default 15s.
	StoragePoll time.Duration

	// WarnWindow is how long before expiry a certificate whose renewal
	// keeps failing is reported as expiring (EventExpiring, state
	// "expiring"). Default: 10% of the lifetime.
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
	// Manager's goroutines and must not block for long.
	OnEvent func(Event)
	// Logger receives logs; nil discards them.
	Logger *slog.Logger
	// UserAgent names the program to the CA, first in the User-Agent
	// header, such as "tlspilot/v1.2.0". Default "tlspilot".
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

// withDefaults fills in defaults and checks the configuration.
func (c Config) withDefaults() (Config, error) {
	if c.CA == "" {
		c.CA = LetsEncrypt
	}
	u, err := url.Parse(c.CA)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return c, fmt.Errorf("config: CA %q: want an https:// ACME directory URL", c.CA)
	}
	if c.Storage == nil && c.StorageDir == "" {
		dir, err := defaultStorageDir()
		if err != nil {
			return c, err
		}
		c.StorageDir = dir
	}
	if c.KeyFile == "" {
		if c.StorageDir == "" {
			return c, fmt.Errorf("config: KeyFile is required with a custom Storage")
		}
		c.KeyFile = filepath.Join(c.StorageDir, "kek")
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
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.OrderLimit <= 0 || c.OrderWindow <= 0 {
		c.OrderLimit, c.OrderWindow = 1000, time.Minute
		if isLetsEncrypt(c.CA) {
			c.OrderLimit, c.OrderWindow = 300, 3*time.Hour
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
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
