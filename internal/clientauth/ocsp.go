package clientauth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/ocspclient"
)

// ocspSource asks OCSP responders through an ocspclient.Cache, which keeps
// verified responses in memory and storage and runs one fetch per
// certificate at a time. It adds what a handshake needs: a response past
// its refresh time is fetched again in the background while it keeps
// answering, and after a failed fetch about a certificate no new one
// starts for failureBackoff.
type ocspSource struct {
	base  context.Context // ends at Checker.Close
	cache *ocspclient.Cache
	opts  ocspclient.Options
	log   *slog.Logger
	spawn func(func()) bool

	mu       sync.Mutex
	inFlight map[ocspclient.CertID]bool      // background refreshes running
	failed   map[ocspclient.CertID]ocspError // last failed fetch
}

// ocspError is a failed fetch and when it failed.
type ocspError struct {
	at  time.Time
	err error
}

// newOCSPSource returns a source asking with fetch, whose background
// work ends with base.
func newOCSPSource(base context.Context, opts Options, fetch ocspclient.Options, spawn func(func()) bool) *ocspSource {
	return &ocspSource{
		base:     base,
		cache:    ocspclient.NewCache(ocspclient.CacheOptions{Storage: opts.Storage, Fetch: fetch, Logger: opts.Logger}),
		opts:     fetch,
		log:      opts.Logger,
		spawn:    spawn,
		inFlight: make(map[ocspclient.CertID]bool),
		failed:   make(map[ocspclient.CertID]ocspError),
	}
}

// cached returns the answer of a fresh response kept in memory or
// storage, without asking the responder. fresh is true when such a
// response exists, also when it says "unknown" (then err says so).
func (o *ocspSource) cached(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) (a answer, fresh bool, err error) {
	responder := o.responderOf(cert)
	if responder == "" {
		return answer{}, false, errNoSource
	}
	r, err := o.cache.Cached(ctx, cert, issuer)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			o.log.Warn("ocsp cache unreadable", "error", err)
		}
		return answer{}, false, err
	}
	if !now.Before(r.RefreshAt()) || r.Status == ocspclient.Unknown && !now.Before(r.ThisUpdate.Add(unknownRecheck)) {
		o.refreshLater(cert, issuer, r.ID, now)
	}
	a, err = ocspAnswer(r, responder)
	return a, true, err
}

// responderOf returns the responder asked about cert, "" if none: the
// cheap form of ocspclient.Options.ResponderURL (no URL parsing), for
// the path every handshake takes.
func (o *ocspSource) responderOf(cert *x509.Certificate) string {
	if o.opts.Responder != "" {
		return o.opts.Responder
	}
	for _, u := range cert.OCSPServer {
		if hasFoldPrefix(u, "http://") || hasFoldPrefix(u, "https://") {
			return u
		}
	}
	return ""
}

// hasFoldPrefix is strings.HasPrefix ignoring ASCII case.
func hasFoldPrefix(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// unknownRecheck is how old an "unknown" answer may be before a
// handshake that finds it asks the responder again in the background:
// a responder answers "unknown" for a certificate it does not know yet
// (one issued after it read its index), and keeping that until the
// answer's half-life refused a good client for hours.
// A variable for the tests.
var unknownRecheck = time.Minute

// refreshLater starts a background fetch about cert unless one runs or
// the last one failed less than failureBackoff ago.
func (o *ocspSource) refreshLater(cert, issuer *x509.Certificate, id ocspclient.CertID, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.inFlight[id] || now.Sub(o.failed[id].at) < failureBackoff {
		return
	}
	responder := o.responderOf(cert)
	o.inFlight[id] = o.spawn(func() {
		r, err := o.cache.Refresh(o.base, cert, issuer)
		if err == nil && r.Status == ocspclient.Unknown {
			// Asked again no sooner than after a failure, even when the
			// responder's "unknown" is older than unknownRecheck.
			o.done(id, fmt.Errorf("ocsp %s: status %s", responder, r.Status))
			return
		}
		if err != nil {
			err = fetchFailure(responder, err)
			o.log.Warn("ocsp refresh failed, the current response answers until its nextUpdate",
				"serial", serialHex(cert.SerialNumber), "error", err)
		}
		o.done(id, err)
	})
}

// done records the end of a fetch about id; err, if any, is what ask
// returns for failureBackoff, so it says what went wrong in words.
func (o *ocspSource) done(id ocspclient.CertID, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.inFlight, id)
	if err == nil {
		delete(o.failed, id)
		return
	}
	o.failed[id] = ocspError{at: time.Now(), err: err}
}

// ask fetches a response about cert (one fetch per certificate at a
// time, bounded by Options.Timeout) and waits for it until ctx ends; the
// fetch goes on in the background after that, and its outcome is
// recorded. After a failed fetch it returns that error without asking
// again for failureBackoff. A failed fetch's error says what was wrong
// (fetchFailure).
func (o *ocspSource) ask(ctx context.Context, cert, issuer *x509.Certificate) (answer, error) {
	responder, err := o.opts.ResponderURL(cert)
	if err != nil {
		return answer{}, errNoSource
	}
	id := ocspclient.IDOf(cert, issuer)
	o.mu.Lock()
	last, failed := o.failed[id]
	o.mu.Unlock()
	if failed && time.Since(last.at) < failureBackoff {
		return answer{}, last.err
	}
	type result struct {
		r   *ocspclient.Response
		err error
	}
	ch := make(chan result, 1)
	if !o.spawn(func() {
		r, err := o.cache.Refresh(o.base, cert, issuer)
		if err != nil {
			err = fetchFailure(responder, err)
		}
		o.done(id, err)
		ch <- result{r, err}
	}) {
		return answer{}, errors.New("ocsp: checker closed")
	}
	select {
	case res := <-ch:
		if res.err != nil {
			return answer{}, res.err
		}
		return ocspAnswer(res.r, responder)
	case <-ctx.Done():
		return answer{}, fmt.Errorf("ocsp %s: no answer in time: %w", responder, ctx.Err())
	}
}

// fetchFailure says what made a fetch from responder fail, in the words
// of ocspclient.Problem (as the stapler does), wrapping err: "ocsp
// <responder>: answer for another serial: <err>". The bare error would
// not say it plainly: an answer that does not parse as an OCSP response
// ends in an ASN.1 decoder's dump ("asn1: structure error: tags don't
// match …"). The words are not said twice when err begins with them, and
// err's own "ocsp fetch from <responder>: ocsp: " is left out.
func fetchFailure(responder string, err error) error {
	words := ocspclient.Problem(err)
	detail := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "ocsp fetch from "+responder+": "), "ocsp: ")
	if !strings.HasPrefix(detail, words) {
		detail = words + ": " + detail
	}
	return &wordedError{msg: "ocsp " + responder + ": " + detail, err: err}
}

// wordedError is an error told in other words than its cause's.
type wordedError struct {
	msg string
	err error
}

func (e *wordedError) Error() string { return e.msg }
func (e *wordedError) Unwrap() error { return e.err }

// ocspAnswer turns a verified response into an answer; "unknown" is an
// error, as it answers nothing.
func ocspAnswer(r *ocspclient.Response, responder string) (answer, error) {
	switch r.Status {
	case ocspclient.Good:
		return answer{source: "ocsp " + responder}, nil
	case ocspclient.Revoked:
		return answer{revoked: true, at: r.RevokedAt, reason: r.Reason, source: "ocsp " + responder}, nil
	}
	return answer{}, fmt.Errorf("ocsp %s: status %s", responder, r.Status)
}
