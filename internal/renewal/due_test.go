package renewal

import (
	"math"
	"testing"
	"time"
)

// fixed returns a Rand that always yields f.
func fixed(f float64) Rand { return func() float64 { return f } }

// almostOne is the largest float64 below 1, the top of Rand's range.
var almostOne = math.Nextafter(1, 0)

func TestDue(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	long, short := 90*day, 6*day
	ariStart, ariEnd := nb.Add(50*day), nb.Add(52*day)
	ari := &Window{Start: ariStart, End: ariEnd}

	tests := []struct {
		name       string
		notAfter   time.Time
		ari        *Window
		rnd        float64
		lo, hi     time.Time // want lo <= got <= hi
		hiExcluded bool      // want got < hi
	}{
		{"ari start", nb.Add(long), ari, 0, ariStart, ariStart, false},
		{"ari middle", nb.Add(long), ari, 0.5, nb.Add(51 * day), nb.Add(51 * day), false},
		{"ari end exclusive", nb.Add(long), ari, almostOne, ariStart, ariEnd, true},
		{"ari rnd out of range", nb.Add(long), ari, 7, ariStart, ariEnd, true},
		{"ari rnd NaN", nb.Add(long), ari, math.NaN(), ariStart, ariStart, false},
		{"ari nil falls back", nb.Add(long), nil, 0, nb.Add(long - long*2/5), nb.Add(long - long*2/5), false},
		{"ari inverted falls back", nb.Add(long), &Window{Start: ariEnd, End: ariStart}, 0, nb.Add(54 * day), nb.Add(54 * day), false},
		{"ari empty falls back", nb.Add(long), &Window{Start: ariStart, End: ariStart}, 0, nb.Add(54 * day), nb.Add(54 * day), false},
		{"ari zero start falls back", nb.Add(long), &Window{End: ariEnd}, 0, nb.Add(54 * day), nb.Add(54 * day), false},
		{"ari zero end falls back", nb.Add(long), &Window{Start: ariStart}, 0, nb.Add(54 * day), nb.Add(54 * day), false},
		{"90d rnd 0", nb.Add(long), nil, 0, nb.Add(54 * day), nb.Add(54 * day), false},
		{"90d rnd 0.5", nb.Add(long), nil, 0.5, nb.Add(57 * day), nb.Add(57 * day), false},
		{"90d rnd ~1", nb.Add(long), nil, almostOne, nb.Add(54 * day), nb.Add(60 * day), true},
		{"6d rnd 0 half rule", nb.Add(short), nil, 0, nb.Add(short/2 - short/15), nb.Add(short/2 - short/15), false},
		{"6d rnd ~1 half rule", nb.Add(short), nil, almostOne, nb.Add(short/2 - short/15), nb.Add(short / 2), true},
		{"exactly ShortLifetime uses third", nb.Add(ShortLifetime), nil, almostOne, nb, nb.Add(ShortLifetime * 2 / 3), true},
		{"zero lifetime", nb, nil, 0.5, nb, nb, false},
		{"negative lifetime", nb.Add(-day), nil, 0.5, nb, nb, false},
		{"1ns lifetime", nb.Add(1), nil, 0.5, nb, nb.Add(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Due(nb, tt.notAfter, tt.ari, fixed(tt.rnd))
			if got.Before(tt.lo) || got.After(tt.hi) || (tt.hiExcluded && !got.Before(tt.hi)) {
				t.Errorf("Due = %v, want in [%v, %v] (hi excluded: %v)", got, tt.lo, tt.hi, tt.hiExcluded)
			}
		})
	}
}

func TestDueRatioBounds(t *testing.T) {
	nb := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name     string
		lifetime time.Duration
		left     time.Duration // time left at the latest renewal point
	}{
		{"90 days", 90 * day, 30 * day},
		{"47 days", 47 * day, 47 * day / 3},
		{"10 days", 10 * day, 10 * day / 3},
		{"6 days", 6 * day, 3 * day},
		{"160 hours", 160 * time.Hour, 80 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			na := nb.Add(tt.lifetime)
			hi := na.Add(-tt.left)
			lo := hi.Add(-tt.lifetime / 15)
			for i := range 1000 {
				f := float64(i) / 1000
				got := Due(nb, na, nil, fixed(f))
				if got.Before(lo) || !got.Before(hi) {
					t.Fatalf("rnd %v: Due = %v, want in [%v, %v)", f, got, lo, hi)
				}
			}
		})
	}
}

func TestDueNilRand(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	got := Due(nb, na, nil, nil)
	if lo, hi := na.Add(-36*24*time.Hour), na.Add(-30*24*time.Hour); got.Before(lo) || !got.Before(hi) {
		t.Errorf("Due with nil Rand = %v, want in [%v, %v)", got, lo, hi)
	}
}
