package renewal

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHeapOrdering(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h Heap[string]
	if _, _, ok := h.Peek(); ok {
		t.Fatal("Peek on empty heap: ok = true")
	}
	if _, _, ok := h.Pop(); ok {
		t.Fatal("Pop on empty heap: ok = true")
	}
	h.Remove("absent") // must not panic
	for i, k := range []string{"c", "a", "d", "b"} {
		h.Set(k, base.Add(time.Duration([]int{3, 1, 4, 2}[i])*time.Hour))
	}
	h.Set("e", base.Add(2*time.Hour)) // ties with b, set later
	if h.Len() != 5 {
		t.Fatalf("Len = %d, want 5", h.Len())
	}
	if k, _, _ := h.Peek(); k != "a" {
		t.Errorf("Peek = %q, want a", k)
	}
	var got []string
	for h.Len() > 0 {
		k, _, _ := h.Pop()
		if _, ok := h.Due(k); ok {
			t.Errorf("Due(%q) still present after Pop", k)
		}
		got = append(got, k)
	}
	if want := []string{"a", "b", "e", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("pop order = %v, want %v", got, want)
	}
}

func TestHeapSetMovesAndRemove(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var h Heap[int]
	for i := range 10 {
		h.Set(i, base.Add(time.Duration(i)*time.Minute))
	}
	h.Set(9, base.Add(-time.Minute)) // move to front
	h.Set(0, base.Add(time.Hour))    // move to back
	if h.Len() != 10 {
		t.Fatalf("Len = %d after moves, want 10", h.Len())
	}
	if due, ok := h.Due(9); !ok || !due.Equal(base.Add(-time.Minute)) {
		t.Errorf("Due(9) = %v, %v; want %v, true", due, ok, base.Add(-time.Minute))
	}
	h.Remove(5)
	h.Remove(5)
	if _, ok := h.Due(5); ok || h.Len() != 9 {
		t.Errorf("after Remove(5): present %v, Len %d; want false, 9", ok, h.Len())
	}
	var got []int
	for h.Len() > 0 {
		k, _, _ := h.Pop()
		got = append(got, k)
	}
	if want := []int{9, 1, 2, 3, 4, 6, 7, 8, 0}; !slices.Equal(got, want) {
		t.Errorf("pop order = %v, want %v", got, want)
	}
}

// refEntry is the reference model's view of one key.
type refEntry struct {
	key int
	due time.Time
	seq int
}

// sortedRef returns the reference model's entries in expected pop order.
func sortedRef(ref map[int]refEntry) []refEntry {
	out := make([]refEntry, 0, len(ref))
	for _, e := range ref {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b refEntry) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	return out
}

func TestHeapRandomAgainstReference(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(42, 7))
	var h Heap[int]
	ref := map[int]refEntry{}
	for seq := range 20000 {
		key := r.IntN(200)
		switch op := r.IntN(10); {
		case op < 6:
			due := base.Add(time.Duration(r.IntN(50)) * time.Minute) // many ties
			h.Set(key, due)
			ref[key] = refEntry{key, due, seq}
		case op < 8:
			h.Remove(key)
			delete(ref, key)
		default:
			k, due, ok := h.Pop()
			want := sortedRef(ref)
			if ok != (len(want) > 0) {
				t.Fatalf("op %d: Pop ok = %v with %d items", seq, ok, len(want))
			}
			if ok {
				if k != want[0].key || !due.Equal(want[0].due) {
					t.Fatalf("op %d: Pop = %d@%v, want %d@%v", seq, k, due, want[0].key, want[0].due)
				}
				delete(ref, k)
			}
		}
		if h.Len() != len(ref) {
			t.Fatalf("op %d: Len = %d, want %d", seq, h.Len(), len(ref))
		}
		if d, ok := h.Due(key); ok != (ref[key] != refEntry{}) || (ok && !d.Equal(ref[key].due)) {
			t.Fatalf("op %d: Due(%d) = %v, %v; reference %+v", seq, key, d, ok, ref[key])
		}
	}
	for _, want := range sortedRef(ref) {
		k, due, ok := h.Pop()
		if !ok || k != want.key || !due.Equal(want.due) {
			t.Fatalf("drain: Pop = %d@%v (%v), want %d@%v", k, due, ok, want.key, want.due)
		}
	}
	if h.Len() != 0 {
		t.Fatalf("Len = %d after drain, want 0", h.Len())
	}
}
