package devca

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
)

const (
	// KeyAlgorithm is the key algorithm of Pebble's root and intermediate.
	KeyAlgorithm = "rsa"
	// CAAIdentity is what Pebble lists in the directory's
	// meta.caaIdentities, the pebble command's default.
	CAAIdentity = "pebble.letsencrypt.org"
	// defaultNonceReject is the percentage of good nonces rejected when
	// Options.NonceReject is 0, the level of lego's end-to-end tests.
	defaultNonceReject = 20
)

// Options configures a CA. The zero value gives a CA like the one of lego's
// end-to-end tests: 20% of good nonces rejected, no validation delays, no
// authorization reuse, one profile named "default" with 90-day
// certificates, nothing logged.
type Options struct {
	// NonceReject is the percentage of good nonces that Pebble rejects as
	// badNonce. 0 means 20; a negative value means none.
	NonceReject int
	// Sleep keeps Pebble's random delay of 0 to 5 seconds before each
	// validation. By default it is off (PEBBLE_VA_NOSLEEP=1).
	Sleep bool
	// Validity is the validity of certificates issued under the "default"
	// profile, rounded up to whole seconds. 0 means Pebble's default, 90 days.
	Validity time.Duration
	// Profiles adds profiles: name to certificate validity (0 means 90 days).
	// An entry named "default" overrides Validity. Pebble gives an order
	// that names no profile a random one, so with extra profiles a client
	// should name the profile it wants.
	Profiles map[string]time.Duration
	// EAB maps external account binding key IDs to base64url-encoded (no
	// padding) HMAC keys. If it is not empty, Pebble requires external
	// account binding for new accounts.
	EAB map[string]string
	// AuthzReuse is the percentage of identifiers for which Pebble reuses a
	// valid authorization of the account. 0 means almost never: Pebble's
	// check is off by one and still reuses 1% of the time. A negative value
	// means Pebble's default, 50.
	AuthzReuse int
	// RetryAfterOrder is the Retry-After, in seconds, that Pebble sends with
	// orders being processed; 0 means none. Pebble randomly writes it either
	// as seconds or as an HTTP date.
	RetryAfterOrder int

	// Log receives the logs of Pebble, its DNS server and its HTTPS
	// servers; nil discards them. It must be safe for concurrent use, and
	// may be written to after Close (see Start).
	Log io.Writer
	// Handler, if set, wraps Pebble's ACME API: every request to
	// DirectoryURL and the URLs under it goes to the handler it returns,
	// which may pass it on to Pebble's. It is called once, by Start.
	Handler func(pebble http.Handler) http.Handler
	// DNS, if set, is the DNS server Pebble resolves names with, instead of
	// one started by Start. Close leaves it running.
	DNS *DNSServer
	// DNSServer, if set (host:port), is the address of a DNS server that
	// Pebble's VA resolves names with over TCP, such as a BIND instance for
	// dns-01; no challtestsrv is started and DNS is ignored. CA.DNS is then
	// nil.
	DNSServer string
	// KeepEnv makes Start leave the environment alone: the caller has set
	// the variables of Env itself, as testenv does with t.Setenv. Start
	// checks that they are set. See Start.
	KeepEnv bool
}

// Env returns the PEBBLE_* environment variables, as key=value, through
// which Pebble takes the settings of o that it reads from the environment.
// Variables Pebble should ignore are set empty. The pebble command reads
// the same variables.
func (o Options) Env() []string {
	noSleep := "1"
	if o.Sleep {
		noSleep = ""
	}
	nonceReject := o.NonceReject
	switch {
	case nonceReject == 0:
		nonceReject = defaultNonceReject
	case nonceReject < 0:
		nonceReject = 0
	}
	authzReuse := strconv.Itoa(o.AuthzReuse)
	if o.AuthzReuse < 0 {
		authzReuse = ""
	}
	return []string{
		"PEBBLE_VA_NOSLEEP=" + noSleep,
		"PEBBLE_VA_ALWAYS_VALID=",
		"PEBBLE_WFE_NONCEREJECT=" + strconv.Itoa(nonceReject),
		"PEBBLE_AUTHZREUSE=" + authzReuse,
	}
}

// PebbleProfiles returns Pebble's certificate profiles for o, as Pebble's
// CA and the pebble command's configuration take them.
func (o Options) PebbleProfiles() map[string]ca.Profile {
	ps := map[string]ca.Profile{
		"default": {Description: "The default profile", ValidityPeriod: seconds(o.Validity)},
	}
	for name, validity := range o.Profiles {
		ps[name] = ca.Profile{Description: "The " + name + " profile", ValidityPeriod: seconds(validity)}
	}
	return ps
}

// seconds returns d in whole seconds, rounded up; 0 for d <= 0.
func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Second - 1) / time.Second)
}
