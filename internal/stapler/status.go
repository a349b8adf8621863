package stapler

import (
	"slices"
	"strings"
	"time"
)

// CertStatus is the stapling state of one certificate that names an
// OCSP responder, for /metrics and the status page.
type CertStatus struct {
	// Serial is the leaf's serial number in lower-case hex; Names its
	// DNS names (or its common name when it has none).
	Serial string
	Names  []string
	// Responder is the URL asked.
	Responder string
	// Status is the last answer's certificate status ("good", "revoked",
	// "unknown"), "" before any.
	Status string
	// Stapling reports whether handshakes get a staple now.
	Stapling bool
	// ThisUpdate and Expires are those of the response stapled now (zero
	// when none is): its age is the time since ThisUpdate.
	ThisUpdate, Expires time.Time
	// NextRefresh is when the next fetch is planned.
	NextRefresh time.Time
	// Failures counts failed fetches since the certificate was first seen.
	Failures int64
}

// Status returns the state of every certificate with an OCSP responder
// the Stapler keeps staples for, sorted by serial number.
func (s *Stapler) Status() []CertStatus {
	now := time.Now()
	var out []CertStatus
	s.certs.Range(func(_, v any) bool {
		if it := v.(*item); it.leaf != nil {
			out = append(out, it.status(now))
		}
		return true
	})
	slices.SortFunc(out, func(a, b CertStatus) int { return strings.Compare(a.Serial, b.Serial) })
	return out
}

// status reads the item's state at now.
func (it *item) status(now time.Time) CertStatus {
	cs := CertStatus{Serial: serialHex(it.leaf.SerialNumber), Names: it.names, Responder: it.responder,
		Failures: it.failTotal.Load()}
	if n := it.next.Load(); n != 0 {
		cs.NextRefresh = time.Unix(0, n)
	}
	if r := it.last.Load(); r != nil {
		cs.Status = r.Status.String()
	}
	if r := it.staple.Load(); r != nil && r.Fresh(now) {
		cs.Stapling, cs.ThisUpdate, cs.Expires = true, r.ThisUpdate, r.Expires()
	}
	return cs
}
