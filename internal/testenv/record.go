package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// newOrderPath is the path of Pebble's newOrder resource.
const newOrderPath = "/order-plz"

// recorder is the handler in front of Pebble's ACME API: it counts requests,
// runs the installed fault, and records successful newOrder requests. It is
// safe for concurrent use.
//
// A request that Pebble refuses with badNonce is not counted: Pebble
// refuses a share of good nonces on purpose (PebbleOptions.NonceReject), and
// a client answers each such refusal by sending the same request again
// (RFC 8555 §6.5), so counting them would make every count in a test depend
// on chance.
type recorder struct {
	next http.Handler

	serial   sync.Mutex // see ServeHTTP
	mu       sync.Mutex
	fault    func(http.ResponseWriter, *http.Request) bool
	paths    []string   // path of every request, in arrival order
	replaces []string   // "replaces" of every newOrder answered 201
	idents   [][]string // identifier values of every newOrder answered 201
}

// ServeHTTP implements http.Handler.
func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.paths = append(rec.paths, r.URL.Path)
	fault := rec.fault
	rec.mu.Unlock()

	if fault != nil {
		fr := r.Clone(r.Context())
		fr.Body = io.NopCloser(bytes.NewReader(body))
		if fault(w, fr) {
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	if strings.HasPrefix(r.URL.Path, newOrderPath) || strings.HasPrefix(r.URL.Path, "/authZ/") {
		// Pebble 2.10.1 can deadlock when a new order (which read-locks its
		// store, then each authorization) meets an authorization request
		// (which write-locks the authorization, then read-locks the store)
		// while a store writer waits. Letting these two kinds of request
		// through one at a time breaks that cycle; each takes about a
		// millisecond.
		rec.serial.Lock()
		defer rec.serial.Unlock()
	}
	rec.next.ServeHTTP(sw, r)
	if sw.badNonce() {
		rec.uncount(r.URL.Path)
	}
	if r.Method == http.MethodPost && r.URL.Path == newOrderPath && sw.status == http.StatusCreated {
		rec.mu.Lock()
		o := newOrderPayload(body)
		rec.replaces = append(rec.replaces, o.Replaces)
		var ids []string
		for _, id := range o.Identifiers {
			ids = append(ids, id.Value)
		}
		rec.idents = append(rec.idents, ids)
		rec.mu.Unlock()
	}
}

// uncount takes back the count of one request to path, counted as it
// arrived.
func (rec *recorder) uncount(path string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if i := slices.Index(rec.paths, path); i >= 0 {
		rec.paths = slices.Delete(rec.paths, i, i+1)
	}
}

// setFault installs f, or removes the fault if f is nil.
func (rec *recorder) setFault(f func(http.ResponseWriter, *http.Request) bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.fault = f
}

// count returns how many requests had a path starting with prefix.
func (rec *recorder) count(prefix string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, p := range rec.paths {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

// orders returns a copy of the recorded "replaces" fields.
func (rec *recorder) orders() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string{}, rec.replaces...)
}

// ordersFor counts the recorded new orders that include identifier.
func (rec *recorder) ordersFor(identifier string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, ids := range rec.idents {
		for _, id := range ids {
			if id == identifier {
				n++
				break
			}
		}
	}
	return n
}

// orderPayload is the part of a newOrder request the recorder reads.
type orderPayload struct {
	Replaces    string `json:"replaces"`
	Identifiers []struct {
		Value string `json:"value"`
	} `json:"identifiers"`
}

// replacesField returns the "replaces" field of the payload of a JWS in
// flattened JSON serialization, or "" if there is none or body is malformed.
func replacesField(body []byte) string {
	return newOrderPayload(body).Replaces
}

// newOrderPayload decodes the payload of a newOrder JWS in flattened JSON
// serialization; a malformed body gives the zero value.
func newOrderPayload(body []byte) orderPayload {
	var jws struct {
		Payload string `json:"payload"`
	}
	var order orderPayload
	if json.Unmarshal(body, &jws) != nil {
		return order
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jws.Payload, "="))
	if err != nil {
		return order
	}
	if json.Unmarshal(payload, &order) != nil {
		return orderPayload{}
	}
	return order
}

// statusWriter remembers the status code written through it and, for a
// 400 answer, the start of its body.
type statusWriter struct {
	http.ResponseWriter
	status int
	head   []byte // first bytes of a 400 answer's body
}

// problemHeadSize bounds how much of a 400 answer statusWriter keeps: enough
// for the "type" member of Pebble's problem documents, which comes first.
const problemHeadSize = 512

// badNonce reports whether the answer was a badNonce problem document
// (RFC 8555 §6.5).
func (sw *statusWriter) badNonce() bool {
	return sw.status == http.StatusBadRequest &&
		bytes.Contains(sw.head, []byte(`"`+acmeErrorNamespace+`badNonce"`))
}

// WriteHeader implements http.ResponseWriter.
func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	if sw.status == http.StatusBadRequest && len(sw.head) < problemHeadSize {
		sw.head = append(sw.head, p[:min(len(p), problemHeadSize-len(sw.head))]...)
	}
	return sw.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (sw *statusWriter) Unwrap() http.ResponseWriter {
	return sw.ResponseWriter
}
