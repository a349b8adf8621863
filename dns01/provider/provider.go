// Package provider builds the dns01.Provider that a dns01.Config (the
// [dns] section of the configuration file) names. It lives apart from
// dns01 because the providers import dns01.
//
//	p, err := provider.New(cfg, logger)
//	m, err := tlspilot.New(ctx, tlspilot.Config{
//		Challenge:      tlspilot.DNS01,
//		DNSProvider:    p,
//		DNSPropagation: cfg.Propagation(),
//	})
package provider

import (
	"fmt"
	"log/slog"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/exec"
	"github.com/tlspilot/tlspilot/dns01/rfc2136"
)

// New checks cfg and returns its provider: "rfc2136" (with the TSIG
// secret read from TSIGSecretFile, refused if group or others may read
// it, or from TSIGSecretEnv) or "exec". Keys that belong to the other
// provider are refused, so a typo does not go unnoticed. log may be nil.
// New does no network I/O.
func New(cfg dns01.Config, log *slog.Logger) (dns01.Provider, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch cfg.Provider {
	case "rfc2136":
		return newRFC2136(cfg, log)
	case "exec":
		return newExec(cfg, log)
	case "":
		return nil, fmt.Errorf("dns: no provider (want rfc2136 or exec)")
	}
	return nil, fmt.Errorf("dns: unknown provider %q (want rfc2136 or exec)", cfg.Provider)
}

func newRFC2136(cfg dns01.Config, log *slog.Logger) (dns01.Provider, error) {
	if cfg.Command != "" {
		return nil, fmt.Errorf("dns: command is for the exec provider, not rfc2136")
	}
	key, err := tsigKey(cfg)
	if err != nil {
		return nil, err
	}
	p, err := rfc2136.New(rfc2136.Options{Server: cfg.Server, TSIGKey: cfg.TSIGKey, TSIGAlgorithm: key.Algorithm,
		TSIGSecret: key.Secret, Timeout: cfg.Timeout})
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	log.Debug("dns-01 provider", "provider", "rfc2136", "server", cfg.Server, "tsig_key", cfg.TSIGKey)
	return p, nil
}

// tsigKey reads the TSIG secret that cfg names. From a file, the key
// clause named TSIGKey is taken, and its algorithm when TSIGAlgorithm is
// unset.
func tsigKey(cfg dns01.Config) (dns01.TSIGKey, error) {
	key := dns01.TSIGKey{Name: cfg.TSIGKey, Algorithm: cfg.TSIGAlgorithm}
	var err error
	switch {
	case cfg.TSIGSecretFile != "" && cfg.TSIGSecretEnv != "":
		return key, fmt.Errorf("dns: set tsig_secret_file or tsig_secret_env, not both")
	case cfg.TSIGSecretFile != "":
		key, err = dns01.ReadKey(cfg.TSIGSecretFile, cfg.TSIGKey, cfg.TSIGAlgorithm)
	case cfg.TSIGSecretEnv != "":
		key.Secret, err = dns01.SecretFromEnv(cfg.TSIGSecretEnv)
	default:
		return key, fmt.Errorf("dns: rfc2136 needs tsig_secret_file (or tsig_secret_env)")
	}
	if err != nil {
		return key, fmt.Errorf("dns: %w", err)
	}
	return key, nil
}

func newExec(cfg dns01.Config, log *slog.Logger) (dns01.Provider, error) {
	for _, kv := range [][2]string{{"server", cfg.Server}, {"tsig_key", cfg.TSIGKey}, {"tsig_algorithm", cfg.TSIGAlgorithm},
		{"tsig_secret_file", cfg.TSIGSecretFile}, {"tsig_secret_env", cfg.TSIGSecretEnv}} {
		if kv[1] != "" {
			return nil, fmt.Errorf("dns: %s is for the rfc2136 provider, not exec", kv[0])
		}
	}
	p, err := exec.New(exec.Options{Command: cfg.Command, Timeout: cfg.Timeout, Log: log})
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	log.Debug("dns-01 provider", "provider", "exec", "command", cfg.Command)
	return p, nil
}
