package engine

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{16, 17}, false},
		{"ctrl-p,ctrl-q", []byte{16, 17}, false},
		{"ctrl-a,x", []byte{1, 'x'}, false},
		{"ctrl-[", []byte{27}, false},
		{"ctrl-1", nil, true},
		{"ab", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDetachKeys(tt.in)
			if tt.bad {
				if KindOf(err) != KindInvalid {
					t.Fatalf("err = %v, want invalid", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEscapeReader(t *testing.T) {
	keys := []byte{16, 17}
	tests := []struct {
		name     string
		in       []byte
		want     string
		detached bool
	}{
		{"plain input passes at EOF", []byte("hello"), "hello", false},
		{"sequence detaches and hides itself", []byte("ab\x10\x11cd"), "ab", true},
		{"half a sequence is passed on", []byte("a\x10b"), "a\x10b", false},
		{"repeated first key", []byte("\x10\x10\x11"), "\x10", true},
		{"trailing half sequence at EOF is passed on", []byte("a\x10"), "a\x10", false},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				var src io.Reader = bytes.NewReader(tt.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				got, err := io.ReadAll(newEscapeReader(src, keys))
				if string(got) != tt.want || errors.Is(err, errDetached) != tt.detached {
					t.Fatalf("got %q, %v; want %q detached=%v", got, err, tt.want, tt.detached)
				}
			})
		}
	}
}
