package solvers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tlspilot/tlspilot/internal/acmeclient"
	"github.com/tlspilot/tlspilot/internal/certstore"
)

// HTTP01Prefix is the path under which http-01 answers are served.
const HTTP01Prefix = "/.well-known/acme-challenge/"

// HTTP01 presents http-01 answers and serves them.
type HTTP01 struct {
	store *certstore.Store
	log   *slog.Logger
	mu    sync.RWMutex
	mem   map[string]string // token -> key authorization, presented here
}

// NewHTTP01 returns an http-01 solver keeping answers in store.
func NewHTTP01(store *certstore.Store, log *slog.Logger) *HTTP01 {
	return &HTTP01{store: store, log: log, mem: make(map[string]string)}
}

// Present stores the answer for ch.
func (h *HTTP01) Present(ctx context.Context, ch acmeclient.Challenge) error {
	h.mu.Lock()
	h.mem[ch.Token] = ch.KeyAuthorization
	h.mu.Unlock()
	return h.store.StoreHTTP01(ctx, ch.Token, ch.KeyAuthorization)
}

// CleanUp removes the answer for ch.
func (h *HTTP01) CleanUp(ctx context.Context, ch acmeclient.Challenge) error {
	h.mu.Lock()
	delete(h.mem, ch.Token)
	h.mu.Unlock()
	return h.store.DeleteHTTP01(ctx, ch.Token)
}

// answer returns the key authorization for tok, from memory or storage.
func (h *HTTP01) answer(ctx context.Context, tok string) (string, bool) {
	h.mu.RLock()
	ka, ok := h.mem[tok]
	h.mu.RUnlock()
	if ok {
		return ka, true
	}
	ka, err := h.store.LoadHTTP01(ctx, tok)
	if err != nil {
		if !certstore.IsNotExist(err) {
			h.log.Warn("load http-01 answer", "error", err)
		}
		return "", false
	}
	return ka, true
}

// Handler answers GET and HEAD requests for HTTP01Prefix+token and passes
// every other request to next (or answers 404 if next is nil). A token
// outside the base64url alphabet or longer than MaxTokenLen is refused
// without a storage lookup.
func (h *HTTP01) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.URL.Path, HTTP01Prefix)
		if !ok {
			if next == nil {
				http.NotFound(w, r)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !ValidToken(tok) {
			http.Error(w, "malformed challenge token", http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		ka, found := h.answer(ctx, tok)
		if !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(ka))
	})
}
