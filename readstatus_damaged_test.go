package tlspilot

import (
	"strings"
	"testing"

	"github.com/tlspilot/tlspilot/internal/certstore"
	"github.com/tlspilot/tlspilot/internal/keys"
	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestReadStatusDamagedError: the UNKNOWN report of a managed certificate
// whose stored record is damaged says why in Error, naming the
// certificate and its damaged record.
func TestReadStatusDamagedError(t *testing.T) {
	cfg := Config{CA: "https://ca.example.test/dir", StorageDir: t.TempDir(), KeyFile: t.TempDir() + "/kek"}
	const name = "damaged.example.test"
	id := certstore.CertID([]string{name}, keys.ECDSAP256)
	fs, err := fsstore.New(fsstore.Options{Dir: cfg.StorageDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Store(t.Context(), "certs/"+id+"/cert.json", []byte(`{"names":["dam`)); err != nil {
		t.Fatal(err)
	}
	r := ReadStatus(t.Context(), cfg, Cert{Names: []string{name}})
	if r.Status != "UNKNOWN" || !strings.Contains(r.Error, id) || !strings.Contains(r.Error, "damaged") {
		t.Errorf("report: status %s, error %q; want UNKNOWN and an error naming %s and the damage", r.Status, r.Error, id)
	}
}
