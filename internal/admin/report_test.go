package admin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestWriteReport: the streamed status document is byte for byte what
// json.MarshalIndent gives, with no, one and several certificates.
func TestWriteReport(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	cert := func(id, state string) tlspilot.CertStatus {
		return tlspilot.CertStatus{ID: id, Names: []string{id + ".example", "www." + id + ".example"}, Managed: true, State: state,
			KeyType: tlspilot.ECDSAP256, NotAfter: now.Add(48 * time.Hour), DaysLeft: 2, Attempts: 1,
			LastError: "obtain: <b>\"quoted\"</b> & more\nsecond line"}
	}
	for _, certs := range [][]tlspilot.CertStatus{
		{},
		{cert("a", tlspilot.StateFailing)},
		{cert("a", tlspilot.StateExpired), cert("b", tlspilot.StatePending), cert("c", tlspilot.StateValid)},
	} {
		rep := tlspilot.StatusReport{Schema: tlspilot.StatusSchema, Time: now, Status: "WARNING", ExitCode: 1,
			Account: &tlspilot.AccountStatus{CA: "https://ca.example/dir", State: "valid"}, Certificates: certs}
		want, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeReport(&got, rep); err != nil {
			t.Fatal(err)
		}
		if got.String() != string(want)+"\n" {
			t.Errorf("%d certificates:\ngot\n%s\nwant\n%s", len(certs), got.String(), want)
		}
		if len(certs) > 0 && !strings.Contains(got.String(), `\u003cb\u003e`) {
			t.Errorf("HTML in values is not escaped as encoding/json escapes it:\n%s", got.String())
		}
	}
}
