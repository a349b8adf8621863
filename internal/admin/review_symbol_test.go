package admin_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestReviewSymbolPostsAtOnce: POSTs to /debug/pprof/symbol on every
// connection the listener keeps, each with a body just under the cap, do
// not hold an answer each: pprof.Symbol makes one of about six times the
// body (64 at once grew tlspilot serve to 878 MB).
func TestReviewSymbolPostsAtOnce(t *testing.T) {
	addr, _ := serveReal(t)
	body := strings.Repeat(symbolPC()+"+", (1<<20-1024)/(len(symbolPC())+1))
	resetPeakRSS(t)
	before := peakRSS(t)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			resp, err := http.Post("http://"+addr+"/debug/pprof/symbol", "text/plain", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			n, _ := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK || n < int64(len(body)) {
				t.Errorf("answered %d, %d bytes", resp.StatusCode, n)
			}
		})
	}
	wg.Wait()
	// The clients' 64 bodies are in this process too. Without the bound
	// it grew by 943 MiB (2 answers at once: about 60 MiB, 250 under the
	// race detector).
	limit := 200.0
	if raceDetector {
		limit = 600
	}
	if grew := (peakRSS(t) - before) / (1 << 20); grew > limit {
		t.Errorf("64 symbol POSTs of %d KiB grew the process by %.0f MiB", len(body)>>10, grew)
	} else {
		t.Logf("grew by %.0f MiB", grew)
	}
}
