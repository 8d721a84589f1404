package process

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

func TestQuietOnlyOnceWhatWasWrittenIsDelivered(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	r := &outReader{f: pr, grace: time.Second, exited: make(chan struct{})}
	if !r.Quiet() {
		t.Fatal("an empty pipe is not quiet")
	}
	pw.Write([]byte("hello"))
	if r.Quiet() {
		t.Fatal("unread output counts as quiet")
	}
	var got []byte
	if n, err := r.ReadTo(make([]byte, 64), func(b []byte) { got = append(got, b...) }); n != 5 || err != nil || string(got) != "hello" {
		t.Fatalf("ReadTo = %d, %v, delivered %q", n, err, got)
	}
	if !r.Quiet() {
		t.Fatal("not quiet after the delivery")
	}
	pw.Close()
	if _, err := r.ReadTo(make([]byte, 64), func([]byte) {}); !errors.Is(err, io.EOF) {
		t.Fatalf("ReadTo at the end = %v, want EOF", err)
	}
}

// With a reader pumping concurrently, every write followed by a wait for
// Quiet finds its bytes delivered: none is between the pipe and delivery.
func TestQuietWhilePumping(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &outReader{f: pr, grace: time.Second, exited: make(chan struct{})}
	var mu sync.Mutex
	var delivered bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 7) // small reads: several per write
		for {
			if _, err := r.ReadTo(buf, func(b []byte) { mu.Lock(); delivered.Write(b); mu.Unlock() }); err != nil {
				return
			}
		}
	}()
	var want bytes.Buffer
	for i := range 200 {
		line := []byte("line " + string(rune('a'+i%26)) + " of output\n")
		pw.Write(line)
		want.Write(line)
		for deadline := time.Now().Add(5 * time.Second); !r.Quiet(); {
			if time.Now().After(deadline) {
				t.Fatal("never quiet")
			}
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		got := delivered.String()
		mu.Unlock()
		if got != want.String() {
			t.Fatalf("after write %d and quiet: delivered %d bytes, written %d", i, len(got), want.Len())
		}
	}
	pw.Close()
	<-done
}
