package proto

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestFramedPacketConnCutsFramesAcrossWrites: frames written in pieces
// (as a stream delivers them) go out as whole datagrams, and datagrams
// that arrive are read back framed.
func TestFramedPacketConnCutsFramesAcrossWrites(t *testing.T) {
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := FramedPacketConn(pc, srv.LocalAddr())
	defer f.Close()
	var frames bytes.Buffer
	for _, d := range []string{"first", "second datagram"} {
		if err := WriteDatagram(&frames, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	b := frames.Bytes()
	for i := 0; i < len(b); i += 3 { // three bytes at a time
		if _, err := f.Write(b[i:min(i+3, len(b))]); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	for _, want := range []string{"first", "second datagram"} {
		_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := srv.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != want {
			t.Fatalf("datagram %q, want %q", got, want)
		}
		if _, err := srv.WriteTo([]byte("re:"+want), from); err != nil {
			t.Fatal(err)
		}
		_ = f.SetReadDeadline(time.Now().Add(5 * time.Second))
		back := make([]byte, MaxDatagram)
		n, err = ReadDatagram(f, back)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(back[:n]); got != "re:"+want {
			t.Fatalf("answer %q", got)
		}
	}
	if err := WriteDatagram(&frames, make([]byte, MaxDatagram+1)); err == nil {
		t.Fatal("an oversized datagram was framed")
	}
}
