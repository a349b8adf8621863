package config

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestListenerClashesAsBound: one address written two ways is one
// socket. "localhost" is bound as the address it resolves to (Go takes
// the first IPv4 one), "[::ffff:127.0.0.1]" as 127.0.0.1 and "[0:0::1]"
// as "[::1]"; each passed check, and the second bind failed at start.
func TestListenerClashesAsBound(t *testing.T) {
	f := newFixture(t)
	site := "\n[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	cases := []struct{ config, want string }{
		{"http_listen = \"[::ffff:127.0.0.1]:8080\"\nhttps_listen = \"127.0.0.1:8080\"" + site,
			`tlspilot.toml:2: https_listen: "127.0.0.1:8080": also the address of http_listen ("[::ffff:127.0.0.1]:8080", line 1)`},
		{"http_listen = \"[::1]:8080\"\nhttps_listen = \"[0:0::1]:8080\"" + site,
			`tlspilot.toml:2: https_listen: "[0:0::1]:8080": also the address of http_listen ("[::1]:8080", line 1)`},
		{"admin_listen = \"LocalHost:8080\"\nhttp_listen = \"[::ffff:0.0.0.0]:8080\"" + site,
			`tlspilot.toml:2: http_listen: "[::ffff:0.0.0.0]:8080": also the address of admin_listen ("LocalHost:8080", line 1)`},
	}
	if ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost"); err == nil && firstIPv4(ips).Unmap().String() == "127.0.0.1" {
		cases = append(cases, struct{ config, want string }{"http_listen = \"127.0.0.1:8080\"\nhttps_listen = \"localhost:8080\"" + site,
			`tlspilot.toml:2: https_listen: "localhost:8080": also the address of http_listen ("127.0.0.1:8080", line 1): tlspilot serve cannot listen on it twice`})
	}
	for _, b := range cases {
		parseWant(t, f, b.config, b.want)
	}
	for _, ok := range []string{
		"http_listen = \"[::1]:8080\"\nhttps_listen = \"127.0.0.1:8080\"" + site,
		"http_listen = \"[::1]:8080\"\nhttps_listen = \"[::2]:8080\"" + site,
		"http_listen = \"127.0.0.1:8080\"\nhttps_listen = \"[::ffff:127.0.0.2]:8080\"" + site,
		"admin_listen = \"localhost:2019\"\nhttp_listen = \"192.0.2.1:2019\"" + site,
	} {
		f.mustParse(t, ok)
	}
}

// TestCertsAdminListenerInheritedHasALine: in a file without [[site]],
// certs' admin listener is admin_listen's when certs_admin_listen is not
// written; a clash with it named certs_admin_listen, a key not in the
// file, as "the default".
func TestCertsAdminListenerInheritedHasALine(t *testing.T) {
	f := newFixture(t)
	parseWant(t, f, "admin_listen = \"127.0.0.1:8080\"\n[[certificate]]\nnames = [\"c.example\"]\ncombined = \"$DIR/c.pem\"\nstandalone = \"127.0.0.1:8080\"",
		`tlspilot.toml:5: certificate[1].standalone: "127.0.0.1:8080": also the address of admin_listen ("127.0.0.1:8080", line 1): tlspilot certs cannot listen on it twice`)
}

// TestCertsChallengeListenersClash: a [[certificate]] with neither
// challenge_dir nor standalone is answered on http_listen and
// https_listen, which certs then holds for as long as it runs. In a file
// without [[site]] (nothing else holds them), another certificate's
// standalone listener or certs_admin_listen on the same address passed
// check, and that certificate's validation failed ("address already in
// use"), or its challenges went unanswered.
func TestCertsChallengeListenersClash(t *testing.T) {
	f := newFixture(t)
	plain := "[[certificate]]\nnames = [\"c.example\"]\ncombined = \"$DIR/c.pem\"\n"
	other := "[[certificate]]\nnames = [\"d.example\"]\ncombined = \"$DIR/d.pem\"\n"
	for _, b := range []struct{ config, want string }{
		{plain + other + "standalone = \":80\"",
			`tlspilot.toml:7: certificate[2].standalone: ":80": also the address of http_listen (":80", the default, where certs answers the http-01 challenges of certificate[1] (line 1), which has neither challenge_dir nor standalone): tlspilot certs cannot listen on it twice; leave standalone out: certs answers the certificate's challenges there too`},
		{"http_listen = \"127.0.0.1:8080\"\n" + other + "standalone = \"0.0.0.0:8080\"\n" + plain,
			`tlspilot.toml:5: certificate[1].standalone: "0.0.0.0:8080": also the address of http_listen ("127.0.0.1:8080", line 1, where certs answers the http-01 challenges of certificate[2] (line 6)`},
		{plain + "challenge = \"tls-alpn-01\"\n" + other + "challenge = \"tls-alpn-01\"\nstandalone = \"[::]:443\"",
			`tlspilot.toml:9: certificate[2].standalone: "[::]:443": also the address of https_listen (":443", the default, where certs answers the tls-alpn-01 challenges of certificate[1]`},
		{"certs_admin_listen = \"127.0.0.1:80\"\n" + plain,
			`tlspilot.toml:1: certs_admin_listen: "127.0.0.1:80": also the address of http_listen (":80", the default, where certs answers the http-01 challenges of certificate[1] (line 2)`},
		{"[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n" + other + "standalone = \":80\"",
			`tlspilot.toml:7: certificate[1].standalone: ":80": also the address of http_listen (":80", the default): tlspilot certs and tlspilot serve, run from this file, cannot both listen on it; leave standalone out: serve answers the certificate's challenges there, from the storage it shares with certs`},
		{"issuer_listen = \":443\"\nissuer_names = [\"issuer.example.com\"]\n" + plain + "challenge = \"tls-alpn-01\"",
			`tlspilot.toml:1: issuer_listen: ":443": also the address of https_listen (":443", the default, where certs answers the tls-alpn-01 challenges of certificate[1] (line 3)`},
		{"admin_listen = \"127.0.0.1:80\"\n" + plain,
			`tlspilot.toml:1: admin_listen: "127.0.0.1:80": also the address of http_listen (":80", the default, where certs answers the http-01 challenges of certificate[1] (line 2)`},
	} {
		parseWant(t, f, b.config, b.want)
	}
	site := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	for _, ok := range []string{
		// serve holds http_listen: certs leaves the answers to it.
		site + plain,
		// certbot standalone lineages, as tlspilot import certbot writes them, and a webroot one.
		plain + "standalone = \":80\"\n" + other + "standalone = \":80\"\n[[certificate]]\nnames = [\"e.example\"]\ncombined = \"$DIR/e.pem\"\nchallenge_dir = \"$DIR/www\"",
		// by files, beside serve answering from the same directory.
		"challenge_dir = \"$DIR/www\"\n" + site + plain + "challenge_dir = \"$DIR/www\"",
		// standalone on another port than the certificate answered on http_listen.
		"http_listen = \"127.0.0.1:8080\"\n" + plain + other + "standalone = \":80\"",
		// certs binds https_listen too, but its http-01 certificates do not need it.
		"issuer_listen = \":443\"\nissuer_names = [\"issuer.example.com\"]\n" + plain + other + "challenge = \"tls-alpn-01\"\nstandalone = \":8443\"",
		// dns-01 opens no listener.
		"[dns]\nprovider = \"exec\"\ncommand = \"/bin/true\"\n" + plain + "challenge = \"dns-01\"\n" + other + "standalone = \":80\"",
	} {
		if _, err := f.parse(t, ok); err != nil {
			t.Errorf("config %q:\n%v", strings.ReplaceAll(ok, f.dir, "$DIR"), err)
		}
	}
}
