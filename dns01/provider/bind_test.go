package provider_test

import (
	"testing"

	"github.com/tlspilot/tlspilot/dns01"
	"github.com/tlspilot/tlspilot/dns01/provider"
	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestKeyClauseFile: a tsig-keygen file with several key clauses, the
// configured one hmac-sha512, and no tsig_algorithm: the provider signs
// with that clause's secret and algorithm, and BIND accepts the update.
func TestKeyClauseFile(t *testing.T) {
	b := testenv.StartBIND(t, testenv.BINDOptions{TSIGAlgorithm: "hmac-sha512",
		Zones: []testenv.BINDZone{{Name: "example.test", Updatable: true}}})
	file := writeFile(t, "tsig.key",
		"key \"other.\" {\n\talgorithm hmac-sha256;\n\tsecret \"b3RoZXIgc2VjcmV0IG90aGVyIHNlY3JldCBvdGhlcg==\";\n};\n"+
			"key \""+b.KeyName+"\" {\n\talgorithm "+b.KeyAlgorithm+";\n\tsecret \""+b.KeySecret+"\";\n};\n", 0o600)
	p, err := provider.New(dns01.Config{Provider: "rfc2136", Server: b.Addr, TSIGKey: b.KeyName, TSIGSecretFile: file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := dns01.Record{FQDN: "_acme-challenge.example.test.", Zone: "example.test.", Value: "v"}
	if err := p.Present(t.Context(), []dns01.Record{rec}); err != nil {
		t.Fatalf("update signed with the clause named %s: %v", b.KeyName, err)
	}
	if got, err := b.TXT(t.Context(), "_acme-challenge.example.test"); err != nil || len(got) != 1 || got[0] != "v" {
		t.Fatalf("TXT = %q, %v; want [v]", got, err)
	}
	if err := p.CleanUp(t.Context(), []dns01.Record{rec}); err != nil {
		t.Fatal(err)
	}
}
