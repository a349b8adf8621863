package certstore

import (
	"slices"
	"testing"

	"github.com/tlspilot/tlspilot/storage/fsstore"
)

// TestListCertsWith: one listing gives the stored certificates and the
// folders holding a given record, stored certificate or not; records of
// a similar name or outside a certificate's folder are not taken.
func TestListCertsWith(t *testing.T) {
	fs, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{
		"certs/a/cert.json", "certs/a/answers-left.json", "certs/a/state.json",
		"certs/b/answers-left.json", "certs/c/cert.json", "certs/c/answers-left.json.bak",
		"accounts/x/answers-left.json",
	} {
		if err := fs.Store(t.Context(), k, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	st := New(fs, nil)
	ids, with, err := st.ListCertsWith(t.Context(), "answers-left.json")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"a", "c"}) || !slices.Equal(with, []string{"a", "b"}) {
		t.Errorf("ListCertsWith = %q, %q; want [a c], [a b]", ids, with)
	}
	if ids, err := st.ListCerts(t.Context()); err != nil || !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("ListCerts = %q, %v", ids, err)
	}
}
