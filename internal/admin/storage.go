package admin

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/tlspilot/tlspilot"
)

// StorageSource is the optional part of a Source that tells whether its
// storage answers; *tlspilot.Manager is one. StorageStatus is called at
// every scrape of /metrics and must not do I/O.
type StorageSource interface {
	StorageStatus() tlspilot.StorageStatus
}

// storageFamilies reports, when src is a StorageSource that checked its
// storage (a zero Checked means none is open),
//
//	tlspilot_storage_up                 1 if the last check of the storage succeeded, else 0
//	tlspilot_storage_last_check_seconds when it was last checked (Unix time)
func storageFamilies(src Source) []*dto.MetricFamily {
	ss, ok := src.(StorageSource)
	if !ok {
		return nil
	}
	st := ss.StorageStatus()
	if st.Checked.IsZero() {
		return nil
	}
	up := family("tlspilot_storage_up",
		"1 if the storage (a directory or PostgreSQL) answered its last check, 0 if not: certificates are then served from memory and renewals wait.", 1)
	v := 0.0
	if st.Up {
		v = 1
	}
	up.Metric = append(up.Metric, gauge(v))
	checked := family("tlspilot_storage_last_check_seconds", "When (Unix time) the storage was last checked.", 1)
	checked.Metric = append(checked.Metric, gauge(unix(st.Checked.UnixMilli())))
	return []*dto.MetricFamily{up, checked}
}
