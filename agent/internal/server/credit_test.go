package server

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// Every stdin byte the hub sends comes back as a credit once the agent has
// consumed it (written to a process, extracted, or dropped), so the hub can
// keep a bounded window of input in flight.
func TestStdinIsCredited(t *testing.T) {
	dir := t.TempDir()
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	blob := bytes.Repeat([]byte("x"), 300<<10)
	_ = tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: int64(len(blob)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(blob)
	_ = tw.Close()

	cases := []struct {
		name  string
		proc  proto.Process
		input []byte
		// stream the input goes to (execIn unless set)
		stream uint32
		check  func(t *testing.T, c *container)
	}{
		{name: "exec reading stdin", proc: proto.Process{Args: []string{"cat"}, OpenStdin: true}, input: bytes.Repeat([]byte("a"), 200<<10)},
		{name: "exec without stdin drops it", proc: sh("sleep 1"), input: []byte("ignored\n")},
		{name: "no such stream drops it", stream: noSuchIn, input: []byte("nobody\n")},
		{
			name: "archive put", proc: proto.Process{Args: []string{proto.ArchiveCommand, "put", dir}, OpenStdin: true}, input: tarball.Bytes(),
			check: func(t *testing.T, c *container) {
				c.h.waitFor(t, "archive exit", 10*time.Second, func() bool { return len(c.h.execExits) > 0 })
				if b, err := os.ReadFile(filepath.Join(dir, "blob")); err != nil || !bytes.Equal(b, blob) {
					t.Fatalf("extracted %d bytes, %v", len(b), err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := runContainer(t, sh(mainSleep), 0, nil)
			stream := tc.stream
			if stream == 0 {
				stream = execIn
				c.exec(t, "x1", tc.proc)
			}
			for p := tc.input; len(p) > 0; {
				n := min(len(p), proto.MaxPayload)
				c.h.sendFrame(t, proto.Frame{Type: proto.TypeStdin, Stream: stream, Payload: p[:n]})
				p = p[n:]
			}
			c.h.sendFrame(t, proto.Frame{Type: proto.TypeStdinClose, Stream: stream})
			c.h.waitFor(t, "credits", 10*time.Second, func() bool { return c.h.credits[stream] >= uint64(len(tc.input)) })
			if got := c.h.credited(stream); got != uint64(len(tc.input)) {
				t.Fatalf("credited %d of %d bytes", got, len(tc.input))
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// The agent says it credits stdin, so the hub may bound what it sends.
func TestHelloOffersStdinCredit(t *testing.T) {
	c := runContainer(t, sh(mainSleep), 0, nil)
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if !c.h.hellos[0].StdinCredit {
		t.Fatal("hello without StdinCredit")
	}
}
