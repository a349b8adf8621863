package testenv

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// acmeErrorNamespace prefixes the ACME error types of RFC 8555, section 6.7.
const acmeErrorNamespace = "urn:ietf:params:acme:error:"

// WriteProblem answers with an RFC 8555 problem document: Content-Type
// application/problem+json, the given status, and a JSON body with type,
// detail and status. A typ without a colon, such as "rateLimited", is taken
// as an ACME error type and prefixed with "urn:ietf:params:acme:error:". A
// positive retryAfter adds a Retry-After header in whole seconds, rounded up.
// It adds no Replay-Nonce header, so clients must fetch a new nonce.
func WriteProblem(w http.ResponseWriter, status int, typ, detail string, retryAfter time.Duration) {
	if !strings.Contains(typ, ":") {
		typ = acmeErrorNamespace + typ
	}
	body, _ := json.Marshal(struct { // cannot fail: strings and an int
		Type   string `json:"type"`
		Detail string `json:"detail,omitempty"`
		Status int    `json:"status"`
	}{typ, detail, status})
	w.Header().Set("Content-Type", "application/problem+json")
	if retryAfter > 0 {
		secs := (retryAfter + time.Second - 1) / time.Second
		w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
