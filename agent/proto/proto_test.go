package proto

import (
	"bytes"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 123456789).UTC()
	tests := []struct {
		name string
		f    Frame
	}{
		{"data keeps stream seq time payload", Frame{Type: TypeData, Stream: StreamStderr, Seq: 42, Time: now, Payload: []byte("hello")}},
		{"ack has no payload", Frame{Type: TypeAck, Stream: StreamStdout, Seq: 7}},
		{"zero time stays zero", Frame{Type: TypeShutdown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unmarshal(tt.f.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.f.Type || got.Stream != tt.f.Stream || got.Seq != tt.f.Seq || !got.Time.Equal(tt.f.Time) || !bytes.Equal(got.Payload, tt.f.Payload) {
				t.Fatalf("got %+v, want %+v", got, tt.f)
			}
		})
	}
}

func TestUnmarshalRejectsShortFrame(t *testing.T) {
	if _, err := Unmarshal([]byte{1, 2, 3}); err != ErrShortFrame {
		t.Fatalf("err = %v, want ErrShortFrame", err)
	}
}

func TestControlDecode(t *testing.T) {
	f, err := Control(TypeExit, Exit{Run: 2, Code: 143, Signal: 15})
	if err != nil {
		t.Fatal(err)
	}
	g, err := Unmarshal(f.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	var e Exit
	if err := g.Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Run != 2 || e.Code != 143 || e.Signal != 15 {
		t.Fatalf("decoded %+v", e)
	}
}
