package clientauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tlspilot/tlspilot/storage"
)

// crlRefreshEvery is the longest a fetched CRL is used before a newer one
// is fetched in the background, even when its nextUpdate is far: a CA
// that publishes more often than it promises gets its revocations seen
// within this time.
const crlRefreshEvery = time.Hour

// crlFetcher fetches the CRLs at the http:// distribution points named in
// certificates, and keeps each (verified against the issuer that asked
// for it) in memory and in storage until its nextUpdate. One download per
// URL runs at a time (singleflight); a CRL past its refresh time is
// fetched again in the background while the one at hand keeps answering.
type crlFetcher struct {
	base    context.Context // ends at Checker.Close
	client  *http.Client
	store   storage.Storage // may be nil
	timeout time.Duration
	maxSize int64
	log     *slog.Logger
	spawn   func(func()) bool
	group   singleflight.Group

	mu    sync.Mutex
	byURL map[string]*fetchedCRL
}

// fetchedCRL is the state of one distribution point.
type fetchedCRL struct {
	l          *crl      // the newest verified CRL, nil if none yet
	refreshAt  time.Time // when to fetch a newer one
	refreshing bool
	failedAt   time.Time // last failed fetch
	err        error     // its error
}

// newCRLFetcher returns a fetcher whose background work ends with base.
func newCRLFetcher(base context.Context, opts Options, spawn func(func()) bool) *crlFetcher {
	return &crlFetcher{
		base: base, client: opts.HTTPClient, store: opts.Storage, timeout: opts.Timeout,
		maxSize: opts.MaxCRLSize, log: opts.Logger, spawn: spawn, byURL: make(map[string]*fetchedCRL),
	}
}

// httpDistributionPoints returns cert's http:// CRL distribution points.
func httpDistributionPoints(cert *x509.Certificate) []string {
	var urls []string
	for _, u := range cert.CRLDistributionPoints {
		if isHTTPURL(u, false) {
			urls = append(urls, u)
		}
	}
	return urls
}

// cached returns the answer of a CRL in memory that covers cert, is
// fresh and verifies against issuer, without I/O; it starts a background
// refresh of that CRL when due.
func (f *crlFetcher) cached(cert, issuer *x509.Certificate, now time.Time) (answer, bool) {
	for _, u := range httpDistributionPoints(cert) {
		f.mu.Lock()
		e := f.byURL[u]
		var l *crl
		if e != nil && e.l != nil {
			l = e.l
			if !now.Before(e.refreshAt) && !e.refreshing && now.Sub(e.failedAt) >= failureBackoff {
				e.refreshing = true
				f.spawn(func() { f.refresh(u, issuer) })
			}
		}
		f.mu.Unlock()
		if l != nil && usable(l, cert, issuer, now) == nil {
			return l.answer(cert), true
		}
	}
	return answer{}, false
}

// usable returns an error unless l covers cert, verifies against issuer
// and is fresh at now.
func usable(l *crl, cert, issuer *x509.Certificate, now time.Time) error {
	if !l.covers(cert, issuer) {
		return fmt.Errorf("crl %s does not cover serial %s", l.source, serialHex(cert.SerialNumber))
	}
	if err := l.verify(issuer); err != nil {
		return err
	}
	return l.fresh(now)
}

// fetch gets the CRL of each of cert's distribution points in turn (from
// storage, else the network) until one answers. It waits at most until
// ctx ends; a download still running then goes on in the background.
// When cert names distribution points but none over http://, the error
// wraps errNoSource and names those skipped.
func (f *crlFetcher) fetch(ctx context.Context, cert, issuer *x509.Certificate) (answer, error) {
	urls := httpDistributionPoints(cert)
	if len(urls) == 0 {
		if len(cert.CRLDistributionPoints) > 0 {
			return answer{}, fmt.Errorf("%w (its CRL distribution point %s is not fetched: only http:// ones are, see RFC 5280 section 4.2.1.13)",
				errNoSource, strings.Join(cert.CRLDistributionPoints, ", "))
		}
		return answer{}, errNoSource
	}
	var errs []error
	for _, u := range urls {
		l, err := f.get(ctx, u, issuer)
		if err == nil {
			err = usable(l, cert, issuer, time.Now())
		}
		if err == nil {
			return l.answer(cert), nil
		}
		errs = append(errs, err)
	}
	return answer{}, errors.Join(errs...)
}

// get returns the CRL of u: the one in memory if fresh, else the stored
// one if fresh, else a download. After a failed download it returns that
// error without trying again for failureBackoff.
func (f *crlFetcher) get(ctx context.Context, u string, issuer *x509.Certificate) (*crl, error) {
	f.mu.Lock()
	e := f.byURL[u]
	if e != nil && e.err != nil && time.Since(e.failedAt) < failureBackoff && (e.l == nil || e.l.fresh(time.Now()) != nil) {
		err := e.err
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	ch := f.group.DoChan(u, func() (any, error) { return f.load(u, issuer) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*crl), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("crl %s: %w", u, ctx.Err())
	}
}

// load is get's shared work, bounded by the fetcher's timeout.
func (f *crlFetcher) load(u string, issuer *x509.Certificate) (*crl, error) {
	ctx, cancel := context.WithTimeout(f.base, f.timeout)
	defer cancel()
	now := time.Now()
	f.mu.Lock()
	e := f.byURL[u]
	f.mu.Unlock()
	if e != nil && e.l != nil && e.l.fresh(now) == nil {
		return e.l, nil // fetched meanwhile
	}
	if l, err := f.loadStored(ctx, u, issuer, now); err == nil {
		f.keep(u, l, now)
		return l, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		f.log.Warn("stored crl not used", "url", u, "error", err)
	}
	return f.download(ctx, u, issuer)
}

// refresh downloads u again in the background.
func (f *crlFetcher) refresh(u string, issuer *x509.Certificate) {
	_, err, _ := f.group.Do(u, func() (any, error) {
		ctx, cancel := context.WithTimeout(f.base, f.timeout)
		defer cancel()
		return f.download(ctx, u, issuer)
	})
	f.mu.Lock()
	f.byURL[u].refreshing = false
	f.mu.Unlock()
	if err != nil {
		f.log.Warn("crl refresh failed, the current one answers until its nextUpdate", "url", u, "error", err)
	}
}

// download fetches, parses and checks the CRL at u, then keeps it in
// memory and storage; a failure is remembered for failureBackoff.
func (f *crlFetcher) download(ctx context.Context, u string, issuer *x509.Certificate) (*crl, error) {
	l, raw, err := f.fetchURL(ctx, u, issuer)
	now := time.Now()
	if err != nil {
		f.mu.Lock()
		e := f.entry(u)
		e.failedAt, e.err = now, err
		f.mu.Unlock()
		return nil, err
	}
	f.keep(u, l, now)
	if f.store != nil {
		if err := f.store.Store(ctx, crlKey(u), raw); err != nil {
			f.log.Warn("fetched crl not stored", "url", u, "error", err)
		}
	}
	return l, nil
}

// fetchURL GETs u, bounded in size, and checks the CRL: signed by
// issuer, fresh, with a nextUpdate. It returns the CRL and its DER.
func (f *crlFetcher) fetchURL(ctx context.Context, u string, issuer *x509.Certificate) (*crl, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("crl %s: %w", u, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("crl fetch: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("crl %s: HTTP status %s", u, resp.Status)
	}
	if resp.ContentLength > f.maxSize {
		return nil, nil, fmt.Errorf("crl %s: %d bytes, more than %d", u, resp.ContentLength, f.maxSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("crl %s: read: %w", u, err)
	}
	if int64(len(body)) > f.maxSize {
		return nil, nil, fmt.Errorf("crl %s: more than %d bytes", u, f.maxSize)
	}
	l, err := checkFetched(body, u, issuer, time.Now())
	if err != nil {
		return nil, nil, err
	}
	return l, l.list.Raw, nil
}

// loadStored reads the stored CRL of u and checks it as a fetched one.
// The error wraps fs.ErrNotExist when there is none.
func (f *crlFetcher) loadStored(ctx context.Context, u string, issuer *x509.Certificate, now time.Time) (*crl, error) {
	if f.store == nil {
		return nil, fs.ErrNotExist
	}
	data, err := f.store.Load(ctx, crlKey(u))
	if err != nil {
		return nil, err
	}
	return checkFetched(data, u, issuer, now)
}

// checkFetched parses data, one CRL in DER or PEM, and checks that it
// was issued and signed by issuer, names a nextUpdate, and is fresh.
func checkFetched(data []byte, u string, issuer *x509.Certificate, now time.Time) (*crl, error) {
	ls, err := parseCRLs(data, u)
	if err != nil {
		return nil, err
	}
	l := ls[0]
	if !bytes.Equal(l.rawIssuer, issuer.RawSubject) {
		return nil, fmt.Errorf("crl %s: issued by %s, not by %s", u, l.list.Issuer, issuer.Subject)
	}
	if err := l.verify(issuer); err != nil {
		return nil, err
	}
	if l.nextUpdate.IsZero() {
		return nil, fmt.Errorf("crl %s: no nextUpdate", u)
	}
	return l, l.fresh(now)
}

// keep puts l in memory as the CRL of u, unless a newer one is there.
func (f *crlFetcher) keep(u string, l *crl, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entry(u)
	if e.l != nil && e.l.thisUpdate.After(l.thisUpdate) {
		return
	}
	e.l, e.err, e.refreshAt = l, nil, crlRefreshAt(l.thisUpdate, l.nextUpdate, now)
}

// entry returns the state of u, made if missing; f.mu must be held.
func (f *crlFetcher) entry(u string) *fetchedCRL {
	e := f.byURL[u]
	if e == nil {
		e = &fetchedCRL{}
		f.byURL[u] = e
	}
	return e
}

// crlRefreshAt is when a CRL obtained at obtained is fetched again:
// half-way from thisUpdate to nextUpdate, and at most crlRefreshEvery
// after it was obtained.
func crlRefreshAt(thisUpdate, nextUpdate, obtained time.Time) time.Time {
	start := thisUpdate
	if start.IsZero() || start.After(obtained) {
		start = obtained
	}
	half := start.Add(nextUpdate.Sub(start) / 2)
	return minTime(half, obtained.Add(crlRefreshEvery))
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// crlKey is the storage key of the CRL fetched from u.
func crlKey(u string) string {
	sum := sha256.Sum256([]byte(u))
	return "clientauth/crl/" + hex.EncodeToString(sum[:])
}
