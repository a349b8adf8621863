package renewal

import (
	"container/heap"
	"time"
)

// Heap is a min-heap of items keyed by due time, the scheduler's timer
// queue. Not safe for concurrent use. The zero value is an empty heap
// ready to use.
//
// Items with equal due times come out in the order they were last Set.
type Heap[K comparable] struct {
	q     queue[K]
	index map[K]*item[K]
	seq   uint64
}

// Set inserts key with the given due time, or moves it there if key is
// already present. It runs in O(log n).
func (h *Heap[K]) Set(key K, due time.Time) {
	h.seq++
	if it, ok := h.index[key]; ok {
		it.due, it.seq = due, h.seq
		heap.Fix(&h.q, it.pos)
		return
	}
	if h.index == nil {
		h.index = make(map[K]*item[K])
	}
	it := &item[K]{key: key, due: due, seq: h.seq}
	h.index[key] = it
	heap.Push(&h.q, it)
}

// Remove deletes key; it does nothing if key is absent. It runs in
// O(log n).
func (h *Heap[K]) Remove(key K) {
	it, ok := h.index[key]
	if !ok {
		return
	}
	heap.Remove(&h.q, it.pos)
	delete(h.index, key)
}

// Peek returns the item with the earliest due time without removing it;
// ok is false if the heap is empty.
func (h *Heap[K]) Peek() (key K, due time.Time, ok bool) {
	if len(h.q) == 0 {
		return key, due, false
	}
	return h.q[0].key, h.q[0].due, true
}

// Pop removes and returns the item with the earliest due time; ok is
// false if the heap is empty.
func (h *Heap[K]) Pop() (key K, due time.Time, ok bool) {
	if len(h.q) == 0 {
		return key, due, false
	}
	it := heap.Pop(&h.q).(*item[K])
	delete(h.index, it.key)
	return it.key, it.due, true
}

// Len returns the number of items in the heap.
func (h *Heap[K]) Len() int { return len(h.q) }

// Due returns the due time of key and whether key is present.
func (h *Heap[K]) Due(key K) (time.Time, bool) {
	it, ok := h.index[key]
	if !ok {
		return time.Time{}, false
	}
	return it.due, true
}

// item is one heap entry; pos is its index in the queue slice.
type item[K comparable] struct {
	key K
	due time.Time
	seq uint64
	pos int
}

// queue implements heap.Interface over items ordered by (due, seq).
type queue[K comparable] []*item[K]

func (q queue[K]) Len() int { return len(q) }

func (q queue[K]) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].seq < q[j].seq
}

func (q queue[K]) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].pos, q[j].pos = i, j
}

func (q *queue[K]) Push(x any) {
	it := x.(*item[K])
	it.pos = len(*q)
	*q = append(*q, it)
}

func (q *queue[K]) Pop() any {
	old := *q
	n := len(old) - 1
	it := old[n]
	old[n] = nil
	it.pos = -1
	*q = old[:n]
	return it
}
