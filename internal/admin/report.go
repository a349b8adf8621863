package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"

	"github.com/tlspilot/tlspilot"
)

// writeReport writes rep as json.MarshalIndent(rep, "", "  ") does,
// followed by a newline, but one certificate at a time: a report of
// 10,000 certificates is never held encoded in memory whole (that would
// be several megabytes, twice over with the indentation).
func writeReport(w io.Writer, rep tlspilot.StatusReport) error {
	certs := rep.Certificates
	rep.Certificates = []tlspilot.CertStatus{}
	head, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	prefix, ok := bytes.CutSuffix(head, []byte("\"certificates\": []\n}"))
	if !ok { // certificates is no longer the last field: encode it whole
		rep.Certificates = certs
		return json.NewEncoder(w).Encode(rep)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(prefix)
	bw.WriteString(`"certificates": [`)
	for i, c := range certs {
		if i > 0 {
			bw.WriteByte(',')
		}
		b, err := json.MarshalIndent(c, "    ", "  ")
		if err != nil {
			return err
		}
		bw.WriteString("\n    ")
		bw.Write(b)
	}
	if len(certs) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	return bw.Flush()
}
