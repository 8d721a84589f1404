package engine

import "testing"

func TestEventProcess(t *testing.T) {
	tests := []struct{ key, want string }{
		{"00000000000000000042-ab12cd34-00000001", "ab12cd34"},
		{"00000000000000000042-ab12cd34-123456789", "ab12cd34"}, // the count outgrew its width
		{"00000000000000000042-with-dash-00000001", "with-dash"},
		{"00000000000000000042", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := eventProcess(tc.key); got != tc.want {
			t.Errorf("eventProcess(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}
