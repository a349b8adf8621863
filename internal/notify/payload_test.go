package notify

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestPayloadAttemptAndRetryAt: attempt and retry_at are those of the
// event for renew-failed and deploy-failed only; every other event
// carries 0 and null, as documented, even when the Manager's event
// carries the renewal state's count and next attempt (as "expiring" and
// "expired" do).
func TestPayloadAttemptAndRetryAt(t *testing.T) {
	at := time.Date(2026, 2, 20, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		typ      tlspilot.EventType
		attempt  float64
		retryAt  any
		envRetry string
	}{
		{tlspilot.EventFailed, 2, "2026-02-20T08:00:00Z", "2026-02-20T08:00:00Z"},
		{tlspilot.EventDeployFailed, 2, "2026-02-20T08:00:00Z", "2026-02-20T08:00:00Z"},
		{tlspilot.EventExpiring, 0, nil, ""},
		{tlspilot.EventExpired, 0, nil, ""},
		{tlspilot.EventObtained, 0, nil, ""},
		{tlspilot.EventRenewed, 0, nil, ""},
		{tlspilot.EventRevoked, 0, nil, ""},
		{tlspilot.EventDeployed, 0, nil, ""},
	} {
		p := payloadOf(tlspilot.Event{Type: tt.typ, CertID: "a", Names: []string{"a.example"}, Time: at,
			NotAfter: at.Add(time.Hour), Attempt: 2, RetryAt: at, Err: errors.New("last error")})
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc["attempt"] != tt.attempt || doc["retry_at"] != tt.retryAt {
			t.Errorf("%s: attempt %v, retry_at %v; want %v, %v", tt.typ, doc["attempt"], doc["retry_at"], tt.attempt, tt.retryAt)
		}
		env := p.environ(nil)
		wantAttempt := "TLSPILOT_ATTEMPT=" + strconv.Itoa(int(tt.attempt))
		if !slices.Contains(env, wantAttempt) || !slices.Contains(env, "TLSPILOT_RETRY_AT="+tt.envRetry) {
			t.Errorf("%s: environment lacks %s or TLSPILOT_RETRY_AT=%s", tt.typ, wantAttempt, tt.envRetry)
		}
	}
}
