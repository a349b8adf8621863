package dns01

import "time"

// Config is the [dns] section of tlspilot's configuration file, field for
// key; dns01/provider builds the Provider it names, and Propagation gives
// the options of the propagation check. Durations are parsed by the
// configuration loader ("60s", "5m").
//
//	provider = "rfc2136"                      # Provider: "rfc2136" or "exec"
//	server = "ns1.example.com:53"             # Server: rfc2136, where updates go
//	tsig_key = "tlspilot."                    # TSIGKey: rfc2136, the key's name
//	tsig_algorithm = "hmac-sha256"            # TSIGAlgorithm: or "hmac-sha512"
//	tsig_secret_file = "/etc/tlspilot/tsig.secret"  # TSIGSecretFile
//	# tsig_secret_env = "TSIG_SECRET"         # TSIGSecretEnv: instead of a file
//	# zone = "example.com"                    # Zone: found from the SOA otherwise
//	# command = "/usr/local/bin/dns-hook"     # Command: exec provider
//	# timeout = "60s"                         # Timeout: per provider call
//	resolvers = ["127.0.0.1:53"]              # Resolvers
//	authoritative_port = 53                   # AuthoritativePort
//	propagation_timeout = "5m"                # PropagationTimeout
type Config struct {
	// Provider names the provider: "rfc2136" or "exec". Required.
	Provider string
	// Server is where the rfc2136 provider sends updates, host:port (port
	// 53 if omitted).
	Server string
	// TSIGKey is the name of the TSIG key that signs updates, such as
	// "tlspilot.". Required by rfc2136.
	TSIGKey string
	// TSIGAlgorithm is "hmac-sha256" (the default) or "hmac-sha512".
	TSIGAlgorithm string
	// TSIGSecretFile names a file holding the key's base64 secret, alone or
	// as a BIND key clause (the output of tsig-keygen). It must not be
	// readable by group or others. Exactly one of TSIGSecretFile and
	// TSIGSecretEnv is required by rfc2136.
	TSIGSecretFile string
	// TSIGSecretEnv names an environment variable holding the base64
	// secret, for service managers that pass secrets that way.
	TSIGSecretEnv string
	// Zone, if set, is the zone every record is changed in; otherwise each
	// record's zone is found by walking up to its SOA.
	Zone string
	// Command is the program the exec provider runs, as
	// "COMMAND present|cleanup <fqdn> <value>"; see dns01/exec.
	Command string
	// Timeout bounds one provider call: one program run for exec, one
	// update for rfc2136. Default: 60s for exec, 10s for rfc2136.
	Timeout time.Duration
	// Resolvers are the servers (host:port, port 53 if omitted) asked to
	// find zones, their name servers and CNAMEs. Default: the system's
	// (/etc/resolv.conf).
	Resolvers []string
	// AuthoritativePort is the port on which each authoritative server of
	// a zone is asked whether it serves a record. Default 53.
	AuthoritativePort int
	// PropagationTimeout bounds the wait until every authoritative server
	// serves a record. Default 5m.
	PropagationTimeout time.Duration
}

// Propagation returns the options of the propagation check that c sets.
func (c Config) Propagation() PropagationOptions {
	return PropagationOptions{
		Resolvers:         c.Resolvers,
		AuthoritativePort: c.AuthoritativePort,
		Timeout:           c.PropagationTimeout,
		Zone:              c.Zone,
	}
}

// PropagationOptions configures a Checker. The zero value is usable.
type PropagationOptions struct {
	// Resolvers are the servers (host:port, port 53 if omitted) asked to
	// find zones, their name servers and CNAMEs, in order until one
	// answers. Default: the system's (/etc/resolv.conf).
	Resolvers []string
	// AuthoritativePort is the port on which authoritative servers are
	// asked. Default 53.
	AuthoritativePort int
	// Timeout bounds the wait for one record. Default 5m.
	Timeout time.Duration
	// Interval is the pause between two rounds of questions to the
	// authoritative servers. Default 2s. A newly watched record is asked
	// about at once.
	Interval time.Duration
	// Zone, if set, is the zone of every record: no SOA walk.
	Zone string
}

// Defaults of PropagationOptions.
const (
	DefaultPropagationTimeout = 5 * time.Minute
	DefaultInterval           = 2 * time.Second
)
