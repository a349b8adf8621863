package fleet

import (
	"context"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// auditSample returns records of two hosts over 40 days before now
// (times to the microsecond, which both backends keep), appended out of
// order by testAuditor.
func auditSample(now time.Time) []AuditRecord {
	day := 24 * time.Hour
	at := func(d time.Duration) time.Time { return now.Add(-d).UTC().Truncate(time.Microsecond) }
	return []AuditRecord{
		{Time: at(40 * day), Host: "db1", Names: []string{"db1.example.com"}, KeyHash: "aa11", Decision: AuditAccepted},
		{Time: at(40*day - time.Minute), Host: "db1", Names: []string{"db1.example.com"}, KeyHash: "aa11", Decision: AuditIssued,
			OrderURL: "https://ca.example/order/1", Serial: "01ab", NotBefore: at(40 * day), NotAfter: at(-50 * day), Chain: "-----BEGIN CERTIFICATE-----\nMIIB1\n-----END CERTIFICATE-----\n"},
		{Time: at(3 * day), Host: "web1", Names: []string{"evil.example.com", "web1.example.com"}, KeyHash: "bb22", Decision: AuditRefused,
			Reason: "policy: evil.example.com is not among the names web1 may obtain"},
		{Time: at(2 * day), Host: "db1", Names: []string{"db1.example.com"}, KeyHash: "cc33", Decision: AuditAccepted},
		{Time: at(2*day - time.Minute), Host: "db1", Names: []string{"db1.example.com"}, KeyHash: "cc33", Decision: AuditFailed,
			OrderURL: "https://ca.example/order/2", Reason: "order invalid: dns-01: NXDOMAIN"},
		{Time: at(time.Hour), Host: "db1", Names: []string{"db1.example.com"}, KeyHash: "cc33", Decision: AuditIssued,
			OrderURL: "https://ca.example/order/3", Serial: "02cd", NotBefore: at(time.Hour), NotAfter: at(-89 * day), Chain: "-----BEGIN CERTIFICATE-----\nMIIB2\n-----END CERTIFICATE-----\n"},
	}
}

// testAuditor is the contract every Auditor keeps: records come back as
// appended, oldest first, selected by time, host and decision, without
// their chain when asked; a record with an unknown decision or no host
// is refused.
func testAuditor(t *testing.T, a Auditor) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	recs := auditSample(now)
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		if err := a.Append(ctx, recs[i]); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	pick := func(is ...int) []AuditRecord {
		var out []AuditRecord
		for _, i := range is {
			out = append(out, recs[i])
		}
		return out
	}
	noChain := pick(0, 1, 2, 3, 4, 5)
	for i := range noChain {
		noChain[i].Chain = ""
	}
	for _, tc := range []struct {
		name string
		q    AuditQuery
		want []AuditRecord
	}{
		{"all", AuditQuery{}, pick(0, 1, 2, 3, 4, 5)},
		{"30 days", AuditQuery{Since: now.Add(-30 * 24 * time.Hour)}, pick(2, 3, 4, 5)},
		{"at a record's time", AuditQuery{Since: recs[3].Time}, pick(3, 4, 5)},
		{"host", AuditQuery{Host: "db1"}, pick(0, 1, 3, 4, 5)},
		{"host and 30 days", AuditQuery{Host: "db1", Since: now.Add(-30 * 24 * time.Hour)}, pick(3, 4, 5)},
		{"issued", AuditQuery{Decision: AuditIssued}, pick(1, 5)},
		{"unknown host", AuditQuery{Host: "db9"}, nil},
		{"future", AuditQuery{Since: now.Add(time.Hour)}, nil},
		{"without chain", AuditQuery{OmitChain: true}, noChain},
	} {
		got, err := a.Query(ctx, tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(got) != len(tc.want) || len(got) > 0 && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", tc.name, got, tc.want)
		}
	}

	before := time.Now()
	if err := a.Append(ctx, AuditRecord{Host: "db2", Decision: AuditRefused, Reason: "agent revoked"}); err != nil {
		t.Fatal(err)
	}
	got, err := a.Query(ctx, AuditQuery{Host: "db2"})
	if err != nil || len(got) != 1 {
		t.Fatalf("the record without a time: %v %+v", err, got)
	}
	if r := got[0]; r.Time.Before(before.Truncate(time.Microsecond)) || r.Time.Location() != time.UTC || len(r.Names) != 0 {
		t.Errorf("a record appended without a time got %v (appended after %v)", r.Time, before)
	}
	for _, r := range []AuditRecord{{Host: "db1", Decision: "approved"}, {Decision: AuditIssued}} {
		if err := a.Append(ctx, r); err == nil {
			t.Errorf("Append(%+v) accepted", r)
		}
	}
}

// TestStorageAuditor: the contract over a file storage; one key per
// record, named by its time, holding JSON, and records already stored
// are never rewritten by later appends.
func TestStorageAuditor(t *testing.T) {
	ctx := context.Background()
	st, err := fsstore.New(fsstore.Options{Dir: filepath.Join(t.TempDir(), "storage")})
	if err != nil {
		t.Fatal(err)
	}
	a := NewStorageAuditor(st)
	testAuditor(t, a)

	keyRE := regexp.MustCompile(`^fleet/audit/[0-9]{8}t[0-9]{6}\.[0-9]{9}z-[0-9a-f]{16}$`)
	stored := func() map[string]string {
		keys, err := st.List(ctx, auditPrefix)
		if err != nil {
			t.Fatal(err)
		}
		m := make(map[string]string)
		for _, k := range keys {
			if !keyRE.MatchString(k) {
				t.Errorf("key %q, want fleet/audit/TIME-RANDOM", k)
			}
			v, err := st.Load(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			m[k] = string(v)
		}
		return m
	}
	before := stored()
	if len(before) != 7 {
		t.Errorf("%d keys, want 7: one per record", len(before))
	}
	if err := a.Append(ctx, AuditRecord{Time: time.Date(2026, 11, 30, 21, 5, 7, 123456789, time.UTC), Host: "db3", Decision: AuditAccepted}); err != nil {
		t.Fatal(err)
	}
	after := stored()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed: %s, was %s", k, after[k], v)
		}
		delete(after, k)
	}
	for k, v := range after {
		if !strings.HasPrefix(k, "fleet/audit/20261130t210507.123456789z-") || !strings.Contains(v, `"decision":"accepted"`) {
			t.Errorf("new record %s: %s", k, v)
		}
	}
	if len(after) != 1 {
		t.Errorf("%d new keys for one record", len(after))
	}
}
