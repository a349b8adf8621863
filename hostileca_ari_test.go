package tlspilot

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/internal/testenv"
)

// TestHostileCAPastRenewalWindow: the CA's renewal information puts
// every certificate's window in the past, even the one it just issued.
// RFC 9773 says to renew at once; a careful client does so once, not in
// a loop that orders a new certificate as fast as the CA issues them.
func TestHostileCAPastRenewalWindow(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	h := newHostile(p)
	h.set(func(req *http.Request, resp *http.Response) *http.Response {
		if !strings.Contains(req.URL.Path, "renewalInfo") || resp.StatusCode != http.StatusOK {
			return resp
		}
		return editJSON(resp, func(m map[string]any) {
			m["suggestedWindow"] = map[string]any{
				"start": time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339),
				"end":   time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339),
			}
		})
	})
	const name = "ari.hostile.test"
	m, _ := hostileManager(t, p, h, name)
	waitServing(t, m, 30*time.Second)
	time.Sleep(10 * time.Second)
	if n := p.OrdersFor(name); n > 3 {
		t.Errorf("%d orders in 10s after the first certificate: renewal loop on a renewal window in the past", n)
	}
	t.Logf("orders: %d; status %+v", p.OrdersFor(name), m.Status()[0])
}

// TestHostileCARenewalInfo (pins held behaviour): renewal information
// far in the future or with an absurd Retry-After leaves a renewal time
// before expiry (a tenth of the lifetime left at the latest) and a next
// check within a day. (A window ending before it starts, malformed JSON
// and a junk explanationURL were tried too and held; left out because
// the protocol library's three retries make each case take 8s.)
func TestHostileCARenewalInfo(t *testing.T) {
	p := testenv.StartPebble(t, testenv.PebbleOptions{})
	window := func(start, end time.Time) string {
		return fmt.Sprintf(`{"suggestedWindow":{"start":%q,"end":%q}}`, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	}
	now := time.Now()
	for _, tc := range []struct{ name, body, retryAfter string }{
		{"far future", window(now.Add(10*365*24*time.Hour), now.Add(11*365*24*time.Hour)), ""},
		{"huge Retry-After", window(now.Add(50*24*time.Hour), now.Add(51*24*time.Hour)), "315360000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostile(p)
			h.set(func(req *http.Request, resp *http.Response) *http.Response {
				if !strings.Contains(req.URL.Path, "renewalInfo") || resp.StatusCode != http.StatusOK {
					return resp
				}
				if tc.retryAfter != "" {
					resp.Header.Set("Retry-After", tc.retryAfter)
				}
				return setBody(resp, []byte(tc.body))
			})
			m, _ := hostileManager(t, p, h, "ri.hostile.test")
			st := waitServing(t, m, 60*time.Second)[0]
			life := st.NotAfter.Sub(st.NotBefore)
			if st.RenewAt.IsZero() || st.RenewAt.After(st.NotAfter.Add(-life/10)) {
				t.Errorf("renew at %v; certificate expires %v", st.RenewAt, st.NotAfter)
			}
			if st.NextRenewal.After(time.Now().Add(25 * time.Hour)) {
				t.Errorf("next renewal check %v: more than a day away", st.NextRenewal)
			}
		})
	}
}
