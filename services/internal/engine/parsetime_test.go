package engine_test

import (
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "1700000000", want: time.Unix(1700000000, 0)},
		{in: "1700000000.5", want: time.Unix(1700000000, 500_000_000)},
		{in: "1700000000.123456789", want: time.Unix(1700000000, 123456789)},
		{in: "2026-11-28T19:00:00.000000001Z", want: time.Date(2026, 11, 28, 19, 0, 0, 1, time.UTC)},
		{in: "1700000000.1234567890", bad: true},
		{in: "soon", bad: true},
	}
	for _, tt := range tests {
		got, err := engine.ParseTime(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseTime(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if got, err := engine.ParseTime("10m"); err != nil || time.Since(got) < 10*time.Minute || time.Since(got) > 11*time.Minute {
		t.Errorf("ParseTime(10m) = %v, %v", got, err)
	}
}
