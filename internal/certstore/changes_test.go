package certstore

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tlspilot/tlspilot/storage/fsstore"
)

func TestChanges(t *testing.T) {
	ctx := context.Background()
	fs, err := fsstore.New(fsstore.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st := New(fs, nil)
	if _, err := st.LoadChanges(ctx); !IsNotExist(err) {
		t.Fatalf("no record yet: %v", err)
	}
	for _, id := range []string{"a", "b", "a"} {
		if err := st.NoteChange(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := st.LoadChanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids, ok := ch.Since(0); !ok || !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("Since(0) = %v, %v", ids, ok)
	}
	if ids, ok := ch.Since(2); !ok || !slices.Equal(ids, []string{"a"}) {
		t.Errorf("Since(2) = %v, %v", ids, ok)
	}
	if ids, ok := ch.Since(3); !ok || ids != nil {
		t.Errorf("Since(3) = %v, %v", ids, ok)
	}
	for i := range MaxRecent + 5 {
		if err := st.NoteChange(ctx, fmt.Sprint("c", i)); err != nil {
			t.Fatal(err)
		}
	}
	ch, _ = st.LoadChanges(ctx)
	if len(ch.Recent) != MaxRecent || ch.Seq != MaxRecent+8 {
		t.Errorf("%d recent, seq %d", len(ch.Recent), ch.Seq)
	}
	if _, ok := ch.Since(3); ok {
		t.Error("Since(3) claims to be complete after more changes than the record keeps")
	}
	if ids, ok := ch.Since(ch.Seq - 1); !ok || len(ids) != 1 {
		t.Errorf("Since(last-1) = %v, %v", ids, ok)
	}
}
