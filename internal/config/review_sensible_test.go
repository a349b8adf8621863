package config

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestSensibleConfigsStillLoad guards the bad-input checks against
// refusing what an operator used to nginx, Caddy or certbot writes on
// purpose: route and require_paths prefixes with dots, tildes, a
// literal "%", spaces or non-ASCII letters; root's and nobody's numeric
// ids; an EAB key as CAs hand it out (base64url, no padding); listeners
// of both families on one port; a file with [[site]] and [[certificate]]
// tables; certbot's standalone and webroot lineages as tlspilot import
// certbot writes them.
func TestSensibleConfigsStillLoad(t *testing.T) {
	f := newFixture(t)
	f.write(t, "zerossl.eab", base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))+"\n", 0o600)
	site := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	cert := "[[certificate]]\nnames = [\"c.example\"]\ncombined = \"$DIR/c.pem\"\n"
	var routes, paths strings.Builder
	for _, p := range []string{"/", "/.well-known/", "/a.b/", "/~user/", "/100%/", "/50%off", "/café/", "/a b/", "/@me", "/...", "/api"} {
		routes.WriteString("[[site.route]]\npath = \"" + p + "\"\nroot = \"$DIR/www\"\n")
		paths.WriteString("\"" + p + "\", ")
	}
	for _, ok := range []string{
		site + routes.String(),
		site + "[site.client_auth]\nca = \"$DIR/ca.pem\"\nmode = \"optional\"\nrequire_paths = [" + paths.String() + "]\n",
		site + "hsts = true\ncsp = \"default-src 'self'\"\n[site.headers]\nX-Frame-Options = \"DENY\"\nPermissions-Policy = \"geolocation=()\"\nReferrer-Policy = \"no-referrer\"\nX-Powered-By = \"\"\n",
		"user = \"0\"\ngroup = \"0\"\n" + site,
		"user = \"65534\"\ngroup = \"65534\"\n" + site,
		"eab_key_id = \"kid-1\"\neab_hmac_file = \"$DIR/zerossl.eab\"\n" + site,
		"http_listen = \"[::1]:80\"\nhttps_listen = \"127.0.0.1:80\"\nadmin_listen = \"[::1]:2019\"\ncerts_admin_listen = \"127.0.0.1:2019\"\n" + site + cert,
		"http_listen = \"0.0.0.0:80\"\nhttps_listen = \"[::]:443\"\n" + site,
		"challenge_dir = \"$DIR/www\"\n" + site + cert + "challenge_dir = \"$DIR/www\"\n",
		site + cert,
		"issuer_listen = \":8443\"\nissuer_names = [\"issuer.example.com\"]\n" + site + cert,
		cert + "challenge = \"http-01\"\nstandalone = \":80\"\n[[certificate]]\nnames = [\"d.example\"]\nchallenge = \"http-01\"\nstandalone = \":80\"\ncombined = \"$DIR/d.pem\"\n",
		"http_listen = \"127.0.0.1:8080\"\n" + site + cert + "standalone = \":80\"\n",
	} {
		if _, err := f.parse(t, ok); err != nil {
			t.Errorf("config:\n%s\nrefused: %v", strings.ReplaceAll(ok, f.dir, "$DIR"), err)
		}
	}
}
