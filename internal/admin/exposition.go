package admin

import (
	"bufio"
	"compress/gzip"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// exposition serves /metrics: the Metrics, the Go and process collectors
// from a registry of its own, and the per-certificate families built
// straight from Source.Status. Those skip the registry's per-sample
// checks and sorting, which at 10,000 certificates cost more than the
// rest of a scrape together; their labels are unique by construction
// (one certificate id each).
type exposition struct {
	reg   *prometheus.Registry
	certs *certFamilies
	log   *slog.Logger
}

func newExposition(src Source, m *Metrics, log *slog.Logger) (*exposition, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		m,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return &exposition{reg: reg, certs: newCertFamilies(src), log: log}, nil
}

// ServeHTTP writes every family, sorted by name, in the format the
// scraper asks for (text by default, protobuf if it prefers it),
// gzip-compressed when it accepts that.
func (e *exposition) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mfs, err := e.reg.Gather()
	if err != nil { // a collector failed: serve what was gathered
		e.log.Warn("admin: /metrics", "error", err)
	}
	mfs = append(mfs, e.certs.gather()...)
	mfs = append(mfs, storageFamilies(e.certs.src)...)
	// A family with no sample (no certificate in service yet) is left
	// out: the text encoder refuses it, which ended the whole answer.
	mfs = slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool { return len(mf.GetMetric()) == 0 })
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })

	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	w.Header().Set("Content-Type", string(format))
	out := bufio.NewWriterSize(w, 64<<10)
	var gz *gzip.Writer
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed) // cannot fail: a valid level
		out.Reset(gz)
	}
	enc := expfmt.NewEncoder(out, format)
	for _, mf := range mfs {
		if err = enc.Encode(mf); err != nil {
			break
		}
	}
	if c, ok := enc.(expfmt.Closer); ok && err == nil {
		err = c.Close()
	}
	if err == nil {
		err = out.Flush()
	}
	if gz != nil && err == nil {
		err = gz.Close()
	}
	if err != nil {
		e.log.Debug("admin: write /metrics", "error", err)
	}
}

// acceptsGzip reports whether an Accept-Encoding header value lists gzip
// with a non-zero quality.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
