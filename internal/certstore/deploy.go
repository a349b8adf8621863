package certstore

import (
	"context"
	"time"
)

// Deployed is what `tlspilot certs` (or any user of a tlspilot.Deployer)
// last put in place of a certificate's files, and how the latest attempt
// went. It is kept beside the certificate so that every process sharing
// the storage, and `tlspilot status`, sees it; a reload that failed after
// the files were written is retried by the next process from here.
type Deployed struct {
	Serial   string    `json:"serial,omitempty"`     // of the certificate whose files are in place and loaded
	NotAfter time.Time `json:"not_after,omitzero"`   // of that certificate
	At       time.Time `json:"deployed_at,omitzero"` // when it was put in place
	// ReloadPending is set once files changed and cleared once the
	// reload succeeded: a reload is owed even if the files no longer
	// change.
	ReloadPending bool      `json:"reload_pending,omitempty"`
	Attempts      int       `json:"attempts,omitempty"` // consecutive failures
	LastError     string    `json:"last_error,omitempty"`
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	RetryAt       time.Time `json:"retry_at,omitzero"`
}

func deployKey(id string) string { return "certs/" + id + "/deploy.json" }

// LoadDeployed returns the deploy record of certificate id. None gives
// an error satisfying IsNotExist.
func (st *Store) LoadDeployed(ctx context.Context, id string) (Deployed, error) {
	var d Deployed
	err := st.loadJSON(ctx, deployKey(id), &d)
	return d, err
}

// StoreDeployed saves the deploy record of certificate id.
func (st *Store) StoreDeployed(ctx context.Context, id string, d Deployed) error {
	return st.storeJSON(ctx, deployKey(id), d)
}

// DeployLock is the lock name taken while deploying certificate id, so
// that two processes never write its files or reload at once.
func DeployLock(id string) string { return "deploy/" + id }
