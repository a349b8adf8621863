package main

import (
	"testing"
	"time"

	"github.com/tlspilot/tlspilot"
)

// TestNextRenewalColumn: status's NEXT RENEWAL is the renewal time drawn
// in the window, not the next renewal information check, unless attempts
// fail, no time is drawn yet or there is no certificate.
func TestNextRenewalColumn(t *testing.T) {
	check := time.Date(2026, 12, 1, 2, 10, 0, 0, time.UTC)
	renew := time.Date(2027, 1, 28, 20, 4, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		c    tlspilot.CertStatus
		want time.Time
	}{
		{"valid", tlspilot.CertStatus{Serving: true, State: tlspilot.StateValid, NextRenewal: check, RenewAt: renew}, renew},
		{"failing", tlspilot.CertStatus{Serving: true, State: tlspilot.StateFailing, Attempts: 2, NextRenewal: check, RenewAt: renew}, check},
		{"not drawn", tlspilot.CertStatus{Serving: true, State: tlspilot.StateValid, NextRenewal: check}, check},
		{"pending", tlspilot.CertStatus{State: tlspilot.StatePending, NextRenewal: check, RenewAt: renew}, check},
		{"revoked", tlspilot.CertStatus{Serving: true, State: tlspilot.StateRevoked, NextRenewal: check, RenewAt: renew}, check},
	} {
		if got := nextRenewal(tt.c); !got.Equal(tt.want) {
			t.Errorf("%s: NEXT RENEWAL %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDaysLeftColumn: the DAYS LEFT column says "expired" once the
// certificate has, not "-0.0" in the minutes after.
func TestDaysLeftColumn(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		st   tlspilot.CertStatus
		want string
	}{
		{tlspilot.CertStatus{Serving: true, NotAfter: now.Add(296 * time.Hour), DaysLeft: 12.33}, "12.3"},
		{tlspilot.CertStatus{Serving: true, NotAfter: now.Add(5 * time.Minute), DaysLeft: 0}, "0.0"},
		{tlspilot.CertStatus{Serving: true, NotAfter: now.Add(-5 * time.Minute), DaysLeft: 0}, "expired"},
		{tlspilot.CertStatus{Serving: true, NotAfter: now.Add(-72 * time.Hour), DaysLeft: -3}, "expired"},
		{tlspilot.CertStatus{}, "-"},
	} {
		if got := daysLeft(c.st, now); got != c.want {
			t.Errorf("not after %v: %q, want %q", c.st.NotAfter, got, c.want)
		}
	}
}
