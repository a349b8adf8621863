package acmeclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// Limits on the size of one answer from the CA, read and held in memory
// whole by the protocol library.
const (
	// maxAnswerBytes bounds every answer but a certificate chain: 1 MiB.
	// A directory, order, authorization or problem document is a few
	// kilobytes; an order for the 100 names a CA allows lists 100
	// authorization URLs, some 10 KiB.
	maxAnswerBytes = 1 << 20
	// maxChainBytes bounds an answer of type
	// application/pem-certificate-chain (RFC 8555 §7.4.2): 4 MiB. A chain
	// is a few certificates of a few kilobytes each; even a leaf with
	// thousands of names is far below this.
	maxChainBytes = 4 << 20
)

// answerTooLargeError ends the reading of an answer longer than its limit.
type answerTooLargeError struct {
	limit     int64  // bytes
	mediaType string // the answer's Content-Type, without parameters
}

func (e *answerTooLargeError) Error() string {
	if e.mediaType == "" {
		return fmt.Sprintf("the CA's answer exceeds %d bytes", e.limit)
	}
	return fmt.Sprintf("the CA's answer (%s) exceeds %d bytes", e.mediaType, e.limit)
}

// limitBody returns resp's body bounded by the limit for its media type:
// reading past it fails with an *answerTooLargeError, and nothing more is
// read from the CA.
func limitBody(resp *http.Response) io.ReadCloser {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	limit := int64(maxAnswerBytes)
	if mt == "application/pem-certificate-chain" {
		limit = maxChainBytes
	}
	return &limitedBody{rc: resp.Body, left: limit, err: &answerTooLargeError{limit: limit, mediaType: mt}}
}

// limitedBody reads rc up to left more bytes, and fails with err if rc
// has more.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more than allowed tells "too long"
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n, err = int(b.left), b.err
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// checkDirectory reads the directory in resp (a successful answer) and
// fails, saying which, unless it is a JSON object naming the newNonce,
// newAccount and newOrder URLs that every flow needs (RFC 8555 §7.1.1);
// otherwise it puts the body back for the protocol library. The library
// caches a directory process-wide for 12 hours once it names newOrder:
// refusing a broken answer here keeps one bad answer from breaking every
// later call.
func checkDirectory(resp *http.Response) error {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read the CA's directory: %w", err)
	}
	var d struct {
		NewNonce   any `json:"newNonce"`
		NewAccount any `json:"newAccount"`
		NewOrder   any `json:"newOrder"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("the CA's directory is not a JSON object (RFC 8555 §7.1.1): %w", err)
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"newNonce", d.NewNonce}, {"newAccount", d.NewAccount}, {"newOrder", d.NewOrder}} {
		if err := checkEndpoint(f.name, f.v); err != nil {
			return err
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

// checkEndpoint fails unless v, the directory's field name, is an
// absolute http(s) URL.
func checkEndpoint(name string, v any) error {
	if v == nil {
		return fmt.Errorf("the CA's directory lacks %s (RFC 8555 §7.1.1)", name)
	}
	s, _ := v.(string)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("the CA's directory gives %s as %s, not an http(s) URL (RFC 8555 §7.1.1)", name, trimmed(v))
	}
	return nil
}

// trimmed shows v, from the CA, in an error: as JSON, at most 100 bytes.
func trimmed(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 100 {
		return string(b[:100]) + "…"
	}
	return string(b)
}
