package admin_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// rootConsts returns the string constants of the root package's file
// whose names start with prefix followed by an upper-case letter, so
// that a state added there is checked here without anyone listing it.
func rootConsts(t *testing.T, file, prefix string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../../"+file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				rest, ok := strings.CutPrefix(n.Name, prefix)
				if !ok || rest == "" || rest[0] < 'A' || rest[0] > 'Z' || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					out[n.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s constants in %s", prefix, file)
	}
	return out
}

// TestEveryStateCounted: every state of a managed certificate the status
// report knows (the State constants but unmanaged, which Status never
// returns) is a value of tlspilot_certificates{state}, so the series sum
// to the certificates; the page counts each and colours none grey, and a
// state that grades the report CRITICAL (expired, revoked) is red.
func TestEveryStateCounted(t *testing.T) {
	var certs []tlspilot.CertStatus
	for name, state := range rootConsts(t, "status.go", "State") {
		if state != tlspilot.StateUnmanaged {
			certs = append(certs, tlspilot.CertStatus{ID: name, Names: []string{state + ".example.test"}, Managed: true, State: state})
		}
	}
	url, rep := serveFake(t, certs...)
	f := scrape(t, url)
	sum := 0.0
	for _, m := range f.family("tlspilot_certificates") {
		sum += m.GetGauge().GetValue()
	}
	if sum != float64(len(certs)) {
		t.Errorf("tlspilot_certificates sums to %v for %d certificates", sum, len(certs))
	}
	_, _, page := get(t, url+"/")
	for _, c := range rep.Certificates {
		f.gauge("tlspilot_certificates", 1, "state", c.State)
		one := tlspilot.NewStatusReport(fixedNow, []tlspilot.CertStatus{c}, nil)
		class := "(orange|green|red)"
		if one.ExitCode == tlspilot.ExitCritical {
			class = "red"
		}
		if !matches(page, `<span class="badge `+class+`">1 `+c.State+`</span>`) {
			t.Errorf("the page does not count the %s certificate (as %s):\n%s", c.State, class, page)
		}
		if row := certRow(t, page, c.ID); !matches(row, `<span class="badge `+class+` state">`+c.State+`</span>`) {
			t.Errorf("the %s certificate's badge is not %s:\n%s", c.State, class, row)
		}
	}
}

// TestEveryDeployStateCounted: tlspilot_certificate_deployments has a
// series for every state of a deployment (the Deploy constants).
func TestEveryDeployStateCounted(t *testing.T) {
	var certs []tlspilot.CertStatus
	for name, state := range rootConsts(t, "deploy.go", "Deploy") {
		certs = append(certs, fakeCert(name, func(c *tlspilot.CertStatus) { c.Deploy = &tlspilot.DeployStatus{State: state} }))
	}
	url, _ := serveFake(t, certs...)
	f := scrape(t, url)
	for _, c := range certs {
		f.gauge("tlspilot_certificate_deployments", 1, "state", c.Deploy.State)
	}
}

// TestRevokedShown: a revoked certificate not replaced yet is counted,
// and shown in red as status grades it, with when it was revoked.
func TestRevokedShown(t *testing.T) {
	revoked := fakeCert("gone", func(c *tlspilot.CertStatus) { c.RevokedAt = fixedNow.Add(-2 * time.Hour) })
	url, rep := serveFake(t, revoked, fakeCert("fine", nil))
	if revoked.State != tlspilot.StateRevoked || rep.Status != "CRITICAL" {
		t.Fatalf("the fake certificate is %s in a %s report, want revoked in a CRITICAL one", revoked.State, rep.Status)
	}
	f := scrape(t, url)
	f.gauge("tlspilot_certificates", 1, "state", tlspilot.StateRevoked)
	f.gauge("tlspilot_certificates", 1, "state", tlspilot.StateValid)
	_, _, page := get(t, url+"/")
	for _, want := range []string{`<span class="badge red">1 revoked</span>`, `<span class="badge green">1 valid</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the counts lack %q", want)
		}
	}
	row := certRow(t, page, "gone")
	for _, want := range []string{`<span class="badge red state">revoked</span>`, "revoked 2026-12-01 04:00 UTC"} {
		if !strings.Contains(row, want) {
			t.Errorf("the revoked certificate's row lacks %q:\n%s", want, row)
		}
	}
}

// matches reports whether s holds a match of the regular expression re.
func matches(s, re string) bool { return regexp.MustCompile(re).MatchString(s) }
