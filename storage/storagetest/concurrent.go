package storagetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tlspilot/tlspilot/storage"
)

// checkedSize is the size of the values written by testConcurrentOneKey.
const checkedSize = 64 << 10

// checkedValue returns a value of checkedSize bytes that names its writer
// and sequence number and ends with a SHA-256 checksum of the rest.
func checkedValue(writer, seq int) []byte {
	v := make([]byte, checkedSize-sha256.Size, checkedSize)
	binary.BigEndian.PutUint32(v[0:], uint32(writer))
	binary.BigEndian.PutUint32(v[4:], uint32(seq))
	rng := rand.New(rand.NewPCG(uint64(writer), uint64(seq)))
	for i := 8; i+8 <= len(v); i += 8 {
		binary.LittleEndian.PutUint64(v[i:], rng.Uint64())
	}
	sum := sha256.Sum256(v)
	return append(v, sum[:]...)
}

// checkValue checks a value made by checkedValue and returns its writer and
// sequence number.
func checkValue(v []byte) (writer, seq int, err error) {
	if len(v) != checkedSize {
		return 0, 0, fmt.Errorf("value is %d bytes long, want %d", len(v), checkedSize)
	}
	body := v[:checkedSize-sha256.Size]
	sum := sha256.Sum256(body)
	writer = int(binary.BigEndian.Uint32(body[0:]))
	seq = int(binary.BigEndian.Uint32(body[4:]))
	if !bytes.Equal(sum[:], v[len(body):]) {
		return writer, seq, fmt.Errorf("checksum mismatch in value claiming writer %d, seq %d: torn or mixed value", writer, seq)
	}
	return writer, seq, nil
}

// testConcurrentOneKey has several handles overwrite one key with large
// values while others read it, and checks every value read is whole.
func testConcurrentOneKey(t *testing.T, b Backend) {
	const writers, rounds, readers = 8, 50, 2
	const key = "race/value"
	first := open(t, b)
	mustStore(t, first, key, checkedValue(1000, 0))
	handles := make([]storage.Storage, writers+readers)
	for i := range handles {
		handles[i] = open(t, b)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	var writing atomic.Int32
	var reads atomic.Int64
	writing.Store(writers)
	for w := range writers {
		wg.Go(func() {
			defer writing.Add(-1)
			for seq := range rounds {
				if err := handles[w].Store(ctx, key, checkedValue(w, seq)); err != nil {
					t.Errorf("writer %d: Store: %v", w, err)
					return
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			h := handles[writers+r]
			for n := 0; writing.Load() > 0 || n < 10; n++ {
				v, err := h.Load(ctx, key)
				if err == nil {
					_, _, err = checkValue(v)
				}
				if err != nil {
					t.Errorf("reader %d: Load: %v", r, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	w, seq, err := checkValue(mustLoad(t, first, key))
	switch {
	case err != nil:
		t.Errorf("final value: %v", err)
	case w >= writers || seq != rounds-1:
		t.Errorf("final value was written by writer %d as its value %d; want some writer's last value %d", w, seq, rounds-1)
	}
	t.Logf("%d loads of %d concurrent stores saw only whole values", reads.Load(), writers*rounds)
}

// testConcurrentManyKeys has several handles store distinct keys, partly
// in folders they create at the same time, and checks all are there.
func testConcurrentManyKeys(t *testing.T, b Backend) {
	const workers, perWorker = 8, 25
	handles := make([]storage.Storage, workers)
	for i := range handles {
		handles[i] = open(t, b)
	}
	keyOf := func(w, i int) string { return fmt.Sprintf("many/d%d/sub/k%d-%03d", i%3, w, i) }
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				if err := handles[w].Store(ctx, keyOf(w, i), []byte(keyOf(w, i))); err != nil {
					t.Errorf("worker %d: Store: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var want []string
	for w := range workers {
		for i := range perWorker {
			want = append(want, keyOf(w, i))
		}
	}
	slices.Sort(want)
	s := open(t, b)
	if got := mustList(t, s, "many"); !slices.Equal(got, want) {
		t.Errorf("List(many) returned %d keys, want %d; missing %q", len(got), len(want), missing(want, got))
	}
	for _, k := range want {
		v, err := s.Load(ctx, k)
		if err != nil || string(v) != k {
			t.Errorf("Load(%q) = %q, %v", k, v, err)
		}
	}
}

// missing returns the elements of want that are not in got.
func missing(want, got []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, w)
		}
	}
	return out
}
