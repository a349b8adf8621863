package renewal

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{"default 1", Backoff{}, 1, time.Minute},
		{"default 2", Backoff{}, 2, 2 * time.Minute},
		{"default 3", Backoff{}, 3, 4 * time.Minute},
		{"default 4", Backoff{}, 4, 8 * time.Minute},
		{"default 9", Backoff{}, 9, 256 * time.Minute},
		{"default capped", Backoff{}, 10, 6 * time.Hour},
		{"attempt 0 is 1", Backoff{}, 0, time.Minute},
		{"attempt negative is 1", Backoff{}, -5, time.Minute},
		{"huge attempt", Backoff{}, math.MaxInt, 6 * time.Hour},
		{"huge attempt huge max", Backoff{Min: time.Nanosecond, Max: math.MaxInt64}, math.MaxInt, math.MaxInt64},
		{"63 doublings of 1ns", Backoff{Min: 1, Max: math.MaxInt64}, 63, 1 << 62},
		{"custom", Backoff{Min: time.Second, Max: 10 * time.Second}, 4, 8 * time.Second},
		{"custom capped", Backoff{Min: time.Second, Max: 10 * time.Second}, 5, 10 * time.Second},
		{"min above max", Backoff{Min: time.Hour, Max: time.Minute}, 1, time.Minute},
		{"negative fields default", Backoff{Min: -1, Max: -1}, 2, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.delay(tt.attempt); got != tt.want {
				t.Errorf("delay(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestBackoffNext(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Time
		rnd        float64
		lo, hi     time.Duration // want now+lo <= got <= now+hi
	}{
		{"1 rnd 0", 1, time.Time{}, 0, 30 * time.Second, 30 * time.Second},
		{"1 rnd ~1", 1, time.Time{}, almostOne, 59 * time.Second, time.Minute},
		{"3 rnd 0.5", 3, time.Time{}, 0.5, 3 * time.Minute, 3 * time.Minute},
		{"capped rnd 0", 50, time.Time{}, 0, 3 * time.Hour, 3 * time.Hour},
		{"capped rnd ~1", 50, time.Time{}, almostOne, 6*time.Hour - time.Second, 6 * time.Hour},
		{"huge attempt", math.MaxInt, time.Time{}, 0.5, 270 * time.Minute, 270 * time.Minute},
		{"retryAfter later wins", 1, now.Add(time.Hour), almostOne, time.Hour, time.Hour},
		{"retryAfter earlier ignored", 1, now.Add(time.Second), 0, 30 * time.Second, 30 * time.Second},
		{"retryAfter in the past ignored", 2, now.Add(-time.Hour), 0, time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Backoff{}.Next(now, tt.attempt, tt.retryAfter, fixed(tt.rnd))
			if d := got.Sub(now); d < tt.lo || d > tt.hi {
				t.Errorf("Next = now+%v, want in [%v, %v]", d, tt.lo, tt.hi)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(1, 2))
	b := Backoff{Min: 10 * time.Second, Max: time.Hour}
	for attempt := 1; attempt <= 20; attempt++ {
		d := b.delay(attempt)
		var sawLow, sawHigh bool
		for range 500 {
			got := b.Next(now, attempt, time.Time{}, r.Float64).Sub(now)
			if got < d/2 || got > d {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, got, d/2, d)
			}
			sawLow = sawLow || got < d*3/4
			sawHigh = sawHigh || got >= d*3/4
		}
		if !sawLow || !sawHigh {
			t.Errorf("attempt %d: jitter does not spread over [d/2, d] (low %v, high %v)", attempt, sawLow, sawHigh)
		}
	}
}
