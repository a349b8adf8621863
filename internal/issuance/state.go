package issuance

import (
	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
)

// The rules below decide, from the CA's own view of an order, an
// authorization or a challenge, what the flow does next. They are the
// only places that read protocol states, so that a run resumed after a
// stop at any moment makes the same decisions as the run it continues.

// canResume reports whether a saved order, as the CA now shows it, can be
// carried on. An order being processed can only be continued with the key
// its CSR was made with; an invalid order, or one in a state we do not
// know, cannot be continued at all.
func canResume(o acmeclient.Order, p certstore.Progress) bool {
	switch o.Status {
	case acmeclient.StatusPending, acmeclient.StatusReady, acmeclient.StatusValid:
		return true
	case acmeclient.StatusProcessing:
		return p.Key != nil || len(p.CSR) > 0
	}
	return false
}

// noCertificate reports whether o is valid but names no certificate URL
// (RFC 8555 §7.1.3 requires one of a valid order): it can never yield its
// certificate, so it is given up like an invalid order.
func noCertificate(o acmeclient.Order) bool {
	return o.Status == acmeclient.StatusValid && o.Certificate == ""
}

// step is what one authorization of an order still needs from us.
type step int

const (
	// stepSkip: the authorization is valid; nothing to do.
	stepSkip step = iota
	// stepAnswer: the challenge is pending; present its answer, ask the
	// CA to validate it, and wait.
	stepAnswer
	// stepWait: the CA is validating (or has validated) the challenge;
	// present its answer again so that the CA can still fetch it, never
	// ask again, and wait for the authorization to be final.
	stepWait
	// stepNewOrder: the authorization failed or is dead; this order can
	// never complete and a new one is needed.
	stepNewOrder
	// stepNoChallenge: the CA does not offer the challenge type we solve.
	stepNoChallenge
)

// String names the step for logs and test failures.
func (s step) String() string {
	switch s {
	case stepSkip:
		return "skip"
	case stepAnswer:
		return "answer"
	case stepWait:
		return "wait"
	case stepNewOrder:
		return "new-order"
	}
	return "no-challenge"
}

// authzStep decides what authorization a needs, and on which of its
// challenges, when we solve challenges of type typ. A challenge the CA is
// working on or has decided decides for the authorization, whatever its
// type: a restart with another challenge type configured must not ask for
// a second validation, nor drop the answer the CA is fetching.
func authzStep(a acmeclient.Authz, typ string) (step, acmeclient.Challenge) {
	switch a.Status {
	case acmeclient.StatusValid:
		return stepSkip, acmeclient.Challenge{}
	case acmeclient.StatusPending, acmeclient.StatusProcessing:
	default: // invalid, deactivated, expired, revoked, or unknown
		return stepNewOrder, acmeclient.Challenge{}
	}
	for _, ch := range a.Challenges {
		switch ch.Status {
		case acmeclient.StatusProcessing, acmeclient.StatusValid:
			return stepWait, ch
		case acmeclient.StatusInvalid:
			return stepNewOrder, ch
		}
	}
	ch, ok := pick(a, typ)
	switch {
	case !ok:
		return stepNoChallenge, acmeclient.Challenge{}
	case ch.Status == acmeclient.StatusPending || ch.Status == "":
		return stepAnswer, ch
	}
	return stepNewOrder, ch
}

// settled reports whether the CA is done with challenge ch of
// authorization a, so that its answer may be removed: the authorization
// is final, or the challenge itself is. A pending challenge is not
// settled: a request to validate it may have reached the CA unseen.
func settled(a acmeclient.Authz, ch acmeclient.Challenge) bool {
	switch a.Status {
	case acmeclient.StatusPending, acmeclient.StatusProcessing, "":
	default:
		return true
	}
	return ch.Status == acmeclient.StatusValid || ch.Status == acmeclient.StatusInvalid
}

// idle reports whether challenge ch of authorization a waits for a
// request to validate it: both are pending, so the CA fetches nothing
// for it until asked.
func idle(a acmeclient.Authz, ch acmeclient.Challenge) bool {
	return a.Status == acmeclient.StatusPending && ch.Status == acmeclient.StatusPending
}

// accepted reports whether the CA has taken up challenge ch of
// authorization a: it is no longer pending, so asking again would be
// refused ("Cannot update challenge with status processing") and the
// only thing left to do is wait.
func accepted(a acmeclient.Authz, ch acmeclient.Challenge) bool {
	switch a.Status {
	case acmeclient.StatusPending, acmeclient.StatusProcessing:
	case "":
		return false
	default:
		return true // final: WaitAuthz reports how it ended
	}
	for _, c := range a.Challenges {
		if c.URL == ch.URL || c.Token == ch.Token {
			return c.Status != acmeclient.StatusPending
		}
	}
	return false
}

func pick(a acmeclient.Authz, typ string) (acmeclient.Challenge, bool) {
	for _, ch := range a.Challenges {
		if ch.Type == typ {
			return ch, true
		}
	}
	return acmeclient.Challenge{}, false
}
