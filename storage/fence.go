package storage

import "context"

// leaseKey is the context key of WithLease.
type leaseKey struct{}

// WithLease returns a copy of ctx saying that the writes made with it
// (Store, Delete) are made under lease, the lock that guards the values
// they change. A backend that can fence writes (pgstore) then rejects such
// a write, with an error wrapping ErrLockLost, unless the lease is still
// held at the moment the write takes effect: a holder that paused past its
// lease, or was cut off while another node took the lock over, cannot
// overwrite what the new holder stored. A backend that cannot (fsstore)
// ignores it, and so does a backend given a lease that is not one of its
// own. Reads ignore it.
//
// A nil lease returns ctx unchanged. Under nested locks, the innermost
// WithLease wins.
func WithLease(ctx context.Context, lease Lease) context.Context {
	if lease == nil {
		return ctx
	}
	return context.WithValue(ctx, leaseKey{}, lease)
}

// LeaseFrom returns the lease that WithLease put in ctx, or nil.
func LeaseFrom(ctx context.Context) Lease {
	l, _ := ctx.Value(leaseKey{}).(Lease)
	return l
}
