package config

import "testing"

// TestHeaderSetByHSTSOnce: hsts sends Strict-Transport-Security as csp
// sends Content-Security-Policy; the same header in [site.headers]
// replaced it silently (an empty one removed it), as it did csp's.
func TestHeaderSetByHSTSOnce(t *testing.T) {
	f := newFixture(t)
	site := "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n"
	for _, h := range []string{`Strict-Transport-Security = "max-age=300"`, `strict-transport-security = ""`} {
		parseWant(t, f, site+"hsts = true\n[site.headers]\n"+h,
			`tlspilot.toml:6: site[1].headers.`+h[:len("strict-transport-security")]+`: the same header as hsts (line 4), which sends it: keep one (for a value of your own, drop hsts)`)
	}
	c := f.mustParse(t, site+"hsts = false\n[site.headers]\nStrict-Transport-Security = \"max-age=63072000; includeSubDomains; preload\"")
	if len(c.Sites[0].Headers) != 1 {
		t.Errorf("headers %v, want Strict-Transport-Security", c.Sites[0].Headers)
	}
}

// TestHeaderTwiceNamedAtTheLaterLine: of two spellings of one header,
// the one written later is refused, naming the earlier; keys were taken
// in byte order, so "X-Frame-Options" below "x-frame-options" had the
// error at the line above, naming the line below.
func TestHeaderTwiceNamedAtTheLaterLine(t *testing.T) {
	f := newFixture(t)
	parseWant(t, f, "[[site]]\nnames = [\"a.example\"]\nroot = \"$DIR/www\"\n[site.headers]\nx-frame-options = \"DENY\"\nX-Frame-Options = \"SAMEORIGIN\"",
		`tlspilot.toml:6: site[1].headers.X-Frame-Options: the same header as x-frame-options (line 5)`)
}
