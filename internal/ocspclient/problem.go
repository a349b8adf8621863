package ocspclient

import (
	"errors"

	"golang.org/x/crypto/ocsp"
)

// Problem says in a few words, for a log message, what made err fail: err
// is an error of Fetch, Parse or Cache.Refresh. A responder that answered,
// but unusably, is told apart from one that could not be reached
// ("responder unavailable"): "responder answered tryLater", "the
// responder's answer is not an OCSP response", "answer signed by a key
// other than the issuer's or its delegate", "answer for another serial",
// "answer is stale" …. The words never name the responder nor the
// certificate: the caller logs those, and err, beside them.
func Problem(err error) string {
	var re ocsp.ResponseError
	switch {
	case errors.As(err, &re):
		return "responder answered " + responseStatusName(re.Status)
	case errors.Is(err, ErrNoResponder):
		return "no ocsp responder named"
	case errors.Is(err, ErrHTTPStatus):
		return "responder answered with an HTTP error"
	case errors.Is(err, ErrMalformed):
		return ErrMalformed.Error()
	case errors.Is(err, ErrBadSignature):
		return "answer signed by a key other than the issuer's or its delegate"
	case errors.Is(err, ErrWrongSerial):
		return "answer for another serial"
	case errors.Is(err, ErrWrongCertificate):
		return "answer for a certificate of another issuer"
	case errors.Is(err, ErrStale):
		return "answer is stale"
	case errors.Is(err, ErrNotYetValid):
		return "answer is dated in the future"
	case errors.Is(err, errUnusable):
		return "answer unusable"
	}
	return "responder unavailable"
}
