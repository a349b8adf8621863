package solvers

import "context"

// An answer belongs to the owners that presented it: the certificates
// whose orders need it. Two orders may need the same answer at once (a CA
// that hands two orders one pending authorization gives both the same
// token), and one order may present its answers again (an order resumed
// after a stop), so presenting is not counted: an owner either holds an
// answer or does not, and CleanUp drops only the claim of its own owner.
// The answer goes away when no owner holds it any more.
//
// The owner travels in the context so that every layer between the
// issuance flow and the solver passes it on unchanged, including the
// clean-up of answers recorded by a process that stopped; it must be the
// same for a Present and the CleanUp that undoes it, in whichever process
// they run. The issuance flow uses the certificate's storage identifier.

type ownerKey struct{}

// WithOwner returns a context under which Present and CleanUp act for
// owner. Calls made without an owner all act for one shared, unnamed
// owner.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// ownerOf returns the owner ctx acts for, "" for the unnamed owner.
func ownerOf(ctx context.Context) string {
	o, _ := ctx.Value(ownerKey{}).(string)
	return o
}

// owners is a set of owners holding an answer.
type owners map[string]struct{}

func (o owners) add(owner string)  { o[owner] = struct{}{} }
func (o owners) drop(owner string) { delete(o, owner) }

type noRetryKey struct{}

// WithoutRetry returns a context under which a failed CleanUp is only
// reported: a solver that retries failed removals in the background
// (dns-01) MUST NOT retry one made under it. The issuance flow uses it
// for the answers it records as left behind and removes again itself,
// under the certificate's issue lock: a background retry, holding no
// lock, could remove the same answer after another process presented it
// again for the same order and asked the CA to validate it.
func WithoutRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRetryKey{}, true)
}

// retryWanted reports whether a failed CleanUp under ctx may be retried
// in the background (see WithoutRetry).
func retryWanted(ctx context.Context) bool {
	no, _ := ctx.Value(noRetryKey{}).(bool)
	return !no
}
