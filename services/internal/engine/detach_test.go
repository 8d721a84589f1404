package engine

import (
	"bytes"
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
		{"ctrl-@,ctrl-_", []byte{0, 31}, false},
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
	tests := []struct {
		name     string
		in       []byte
		want     string
		detached bool
	}{
		{"plain input passes at EOF", []byte("hello"), "hello", false},
		{"sequence detaches and hides itself", []byte("ab\x10\x11cd"), "ab", true},
		{"half a sequence is passed on", []byte("a\x10b"), "a\x10b", false},
		{"sequence across reads detaches", []byte("\x10\x11"), "", true},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(tt.name, func(t *testing.T) {
				var src io.Reader = bytes.NewReader(tt.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				in, err := attachInput(src, "", true)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(in)
				if string(got) != tt.want || isDetach(err) != tt.detached {
					t.Fatalf("got %q, %v; want %q detached=%v", got, err, tt.want, tt.detached)
				}
			})
		}
	}
}

func TestAttachInputWithoutTTYPassesKeys(t *testing.T) {
	in, err := attachInput(bytes.NewReader([]byte("a\x10\x11b")), "", false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(in)
	if err != nil || string(got) != "a\x10\x11b" {
		t.Fatalf("got %q, %v", got, err)
	}
}
