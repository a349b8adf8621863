package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestDeployFailureShown: a certificate of `tlspilot certs` whose reload
// fails (reload = ["/bin/false"]) grades the report CRITICAL; /metrics
// counts it by deploy state and per certificate, and the page shows the
// failing deployment in red with its error, not a green "1 valid".
func TestDeployFailureShown(t *testing.T) {
	const deployErr = "deploy web: reload [/bin/false]: exit status 1"
	failing := fakeCert("web", func(c *tlspilot.CertStatus) {
		c.Deploy = &tlspilot.DeployStatus{State: tlspilot.DeployFailing, Attempts: 3, LastError: deployErr,
			LastAttempt: fixedNow.Add(-time.Minute), RetryAt: fixedNow.Add(40 * time.Second)}
	})
	done := fakeCert("api", func(c *tlspilot.CertStatus) {
		c.Deploy = &tlspilot.DeployStatus{State: tlspilot.DeployDone, Serial: c.Serial, NotAfter: c.NotAfter,
			DeployedAt: fixedNow.Add(-time.Hour)}
	})
	url, rep := serveFake(t, failing, done, fakeCert("plain", nil))
	if rep.Status != "CRITICAL" {
		t.Fatalf("the report of a deploy that never succeeded is %s, want CRITICAL", rep.Status)
	}

	f := scrape(t, url)
	f.gauge("tlspilot_certificate_deploy_failures", 3, "cert", "web")
	f.gauge("tlspilot_certificate_deploy_failures", 0, "cert", "api")
	f.absent("tlspilot_certificate_deploy_failures", "cert", "plain")
	f.gauge("tlspilot_certificate_deployments", 1, "state", tlspilot.DeployFailing)
	f.gauge("tlspilot_certificate_deployments", 1, "state", tlspilot.DeployDone)
	f.gauge("tlspilot_certificate_deployments", 0, "state", tlspilot.DeployPending)
	checkPromtool(t, &world{url: url})

	_, _, page := get(t, url+"/")
	row := certRow(t, page, "web")
	for _, want := range []string{`<span class="badge red deploy">deploy failing</span>`, deployErr, "attempt 3"} {
		if !strings.Contains(row, want) {
			t.Errorf("the row of the failing deployment lacks %q:\n%s", want, row)
		}
	}
	if row := certRow(t, page, "api"); !strings.Contains(row, `<span class="badge green deploy">deployed</span>`) {
		t.Errorf("the row of the deployed certificate lacks its deploy state:\n%s", row)
	}
	if !strings.Contains(page, `<span class="badge red">1 deploy failing</span>`) {
		t.Errorf("the counts lack the failing deployment:\n%s", page)
	}
}

// TestDeployMetricsAbsentWithoutDeployers: serve deploys nothing, so it
// has no deploy series (rather than zeros that suggest a deployer).
func TestDeployMetricsAbsentWithoutDeployers(t *testing.T) {
	url, _ := serveFake(t, fakeCert("plain", nil))
	f := scrape(t, url)
	for _, name := range []string{"tlspilot_certificate_deploy_failures", "tlspilot_certificate_deployments"} {
		if n := len(f.family(name)); n != 0 {
			t.Errorf("%s has %d series without any deployer, want none", name, n)
		}
	}
	if _, _, page := get(t, url+"/"); strings.Contains(page, "deploy") {
		t.Errorf("the page speaks of deployment without any deployer:\n%s", certRow(t, page, "plain"))
	}
}
