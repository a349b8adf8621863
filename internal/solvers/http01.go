package solvers

import (
	"context"
	"fmt"
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

// HTTP01 presents http-01 answers and serves them. An answer is keyed by
// its token, which the CA makes unique per challenge (a token also fixes
// its key authorization), and held by the owners that presented it (see
// WithOwner).
//
// A token it did not present itself (another process or cluster node
// runs the order) is looked up in the storage through an AnswerIndex, so
// requests for made-up tokens cost the storage at most one listing per
// LookupInterval, however many arrive.
type HTTP01 struct {
	store *certstore.Store
	index *certstore.AnswerIndex
	log   *slog.Logger
	mu    sync.RWMutex
	mem   map[string]*httpAnswer // token -> answer presented here
}

// LookupInterval is the shortest time between two listings of the
// stored answers that the solvers make to find an answer presented by
// another process. A lookup waits for the next listing: at most about
// this long plus one List.
const LookupInterval = 100 * time.Millisecond

// httpAnswer is an answer presented by this process.
type httpAnswer struct {
	keyAuth string
	owners  owners
}

// NewHTTP01 returns an http-01 solver keeping answers in store.
func NewHTTP01(store *certstore.Store, log *slog.Logger) *HTTP01 {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &HTTP01{store: store, index: store.HTTP01Index(LookupInterval, log), log: log, mem: make(map[string]*httpAnswer)}
}

// Present stores the answer to ch for the owner of ctx.
func (h *HTTP01) Present(ctx context.Context, ch acmeclient.Challenge) error {
	owner := ownerOf(ctx)
	h.mu.Lock()
	a := h.mem[ch.Token]
	if a == nil {
		a = &httpAnswer{keyAuth: ch.KeyAuthorization, owners: make(owners)}
		h.mem[ch.Token] = a
	}
	a.owners.add(owner)
	h.mu.Unlock()
	if err := h.store.StoreHTTP01(ctx, ch.Token, owner, ch.KeyAuthorization); err != nil {
		return fmt.Errorf("http-01 for %s: store answer: %w", ch.Identifier.Value, err)
	}
	return nil
}

// CleanUp removes the claim of the owner of ctx on the answer to ch; the
// answer stays while another owner holds it.
func (h *HTTP01) CleanUp(ctx context.Context, ch acmeclient.Challenge) error {
	owner := ownerOf(ctx)
	h.mu.Lock()
	if a := h.mem[ch.Token]; a != nil {
		if a.owners.drop(owner); len(a.owners) == 0 {
			delete(h.mem, ch.Token)
		}
	}
	h.mu.Unlock()
	if err := h.store.DeleteHTTP01(ctx, ch.Token, owner); err != nil {
		return fmt.Errorf("http-01 for %s: delete answer: %w", ch.Identifier.Value, err)
	}
	return nil
}

// answer returns the key authorization for tok, from memory or, if the
// index says one is stored, from storage.
func (h *HTTP01) answer(ctx context.Context, tok string) (string, bool) {
	h.mu.RLock()
	a := h.mem[tok]
	h.mu.RUnlock()
	if a != nil {
		return a.keyAuth, true
	}
	if ok, err := h.index.Has(ctx, tok); !ok || err != nil {
		return "", false // a failed listing is logged by the index
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

var _ Solver = (*HTTP01)(nil)
