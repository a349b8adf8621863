package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot"
)

// TestCertsAdminDeployFailing: the certs daemon whose [[certificate]]
// reload always fails (reload = ["/bin/false"]) is CRITICAL in `tlspilot
// status`, and its admin listener says so too: /metrics counts the
// failing deployment and the page shows it in red with its error, not a
// green "1 valid" alone.
func TestCertsAdminDeployFailing(t *testing.T) {
	ce := newCertsEnv(t)
	serveOn(t, ce.http, http.StripPrefix("/.well-known/acme-challenge/", http.FileServer(http.Dir(ce.challenges))))
	conf := ce.configure("", `["/bin/false"]`)
	_, log := ce.certsDaemon(conf)
	waitCount(t, log, "deploy failed", 1)
	c, code := deployed(t, conf)
	if code != tlspilot.ExitCritical || c.Deploy.State != tlspilot.DeployFailing {
		t.Fatalf("status exit %d, deploy %+v", code, c.Deploy)
	}
	base := "http://" + ce.admin
	code, body, _ := get(t, http.DefaultClient, base+"/metrics")
	for _, want := range []string{
		`tlspilot_certificates{state="valid"} 1`,
		`tlspilot_certificate_deployments{state="failing"} 1`,
		fmt.Sprintf("tlspilot_certificate_deploy_failures{cert=%q} ", c.ID),
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /metrics: %d, lacks %q", code, want)
		}
	}
	if strings.Contains(body, fmt.Sprintf("tlspilot_certificate_deploy_failures{cert=%q} 0\n", c.ID)) {
		t.Errorf("GET /metrics: no deploy failure counted for %s", c.ID)
	}
	code, body, _ = get(t, http.DefaultClient, base+"/")
	for _, want := range []string{`<span class="badge red deploy">deploy failing</span>`, `<span class="badge red">1 deploy failing</span>`,
		"deploy " + c.ID + ": reload "} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /: %d, lacks %q", code, want)
		}
	}
}
