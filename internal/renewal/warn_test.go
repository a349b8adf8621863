package renewal

import (
	"testing"
	"time"
)

func TestWarnWindow(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	tests := []struct {
		in    string
		start time.Time
		str   string
	}{
		{"10%", na.Add(-9 * 24 * time.Hour), "10%"},
		{"25%", na.Add(-90 * 24 * time.Hour / 4), "25%"},
		{"7d", na.Add(-7 * 24 * time.Hour), "7d"},
		{"1.5d", na.Add(-36 * time.Hour), "36h0m0s"},
		{"72h", na.Add(-72 * time.Hour), "3d"},
		{" 90m ", na.Add(-90 * time.Minute), "1h30m0s"},
	}
	for _, tt := range tests {
		w, err := ParseWarnWindow(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := w.Start(nb, na); !got.Equal(tt.start) {
			t.Errorf("%q: Start = %v, want %v", tt.in, got, tt.start)
		}
		if w.String() != tt.str {
			t.Errorf("%q: String = %q, want %q", tt.in, w.String(), tt.str)
		}
	}
	if got := (WarnWindow{}).Start(nb, na); !got.Equal(na.Add(-9 * 24 * time.Hour)) {
		t.Errorf("zero window starts at %v, want 10%% of the lifetime before expiry", got)
	}
	for _, bad := range []string{"", "0%", "100%", "-5%", "x%", "0d", "-1d", "soon", "-3h", "0s", "5"} {
		if _, err := ParseWarnWindow(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
