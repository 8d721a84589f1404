package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/internal/session"
	"github.com/sockerless/sockerless/agent/proto"
)

const testPath = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agent is a Server serving on a loopback port for one test.
type agent struct {
	base           string
	stdout, stderr *syncBuffer
	sigs           chan os.Signal
	served         chan error
}

type postResult struct {
	status int
	body   map[string]string
	err    error
	close  bool // the answer said Connection: close
}

func requireShell(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh on the host")
	}
}

// startAgent runs a Server; tests never run in parallel, as its process
// supervisor reaps every child of the test binary.
func startAgent(t *testing.T, mod func(*Config)) *agent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &agent{base: "http://" + ln.Addr().String(), stdout: &syncBuffer{}, stderr: &syncBuffer{}, sigs: make(chan os.Signal, 1), served: make(chan error, 1)}
	cfg := Config{
		Stdout: a.stdout, Stderr: a.stderr, Signals: a.sigs,
		Session: session.Config{ExitResend: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, GiveUpAfter: 10 * time.Second},
	}
	if mod != nil {
		mod(&cfg)
	}
	srv := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { a.served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.served:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return a
}

// awaitServed waits up to d for Serve to return, after what, and fails
// the test unless it returned nil; it leaves the result for the cleanup.
func (a *agent) awaitServed(t *testing.T, d time.Duration, after string) {
	t.Helper()
	select {
	case err := <-a.served:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
		a.served <- nil
	case <-time.After(d):
		t.Fatal("Serve did not return after " + after)
	}
}

// invoke POSTs inv and returns the eventual response.
func (a *agent) invoke(inv proto.Invocation) <-chan postResult {
	res := make(chan postResult, 1)
	go func() {
		body, _ := json.Marshal(inv)
		resp, err := http.Post(a.base+"/", "application/json", bytes.NewReader(body))
		if err != nil {
			res <- postResult{err: err}
			return
		}
		defer resp.Body.Close()
		var m map[string]string
		err = json.NewDecoder(resp.Body).Decode(&m)
		res <- postResult{status: resp.StatusCode, body: m, err: err, close: resp.Close}
	}()
	return res
}

func waitPost(t *testing.T, res <-chan postResult, timeout time.Duration) postResult {
	t.Helper()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("POST: %v", r.err)
		}
		return r
	case <-time.After(timeout):
		t.Fatalf("POST still open after %s", timeout)
		return postResult{}
	}
}

func invocation(h *hub, linger int) proto.Invocation {
	return proto.Invocation{ContainerID: "c0ffee", Secret: "agent-secret", CallbackURL: h.url(), LingerSeconds: linger}
}

func sh(script string) proto.Process {
	return proto.Process{Args: []string{"sh", "-c", script}, Env: []string{testPath}}
}

func TestRunReportsOutputAndExit(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 0))
	h.conn(t, 1)
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("echo out; echo err >&2; exit 3")})

	e := h.exit(t, 1)
	if e.Code != 3 || e.Error != "" || e.Signal != 0 {
		t.Fatalf("exit %+v, want code 3", e)
	}
	r := waitPost(t, res, 10*time.Second)
	if r.status != http.StatusOK || r.body["status"] != "done" {
		t.Fatalf("POST answered %d %v", r.status, r.body)
	}
	if !r.close {
		t.Fatal("the final answer lets the platform keep the connection to an instance that is ending")
	}
	if got := h.output(proto.StreamStdout); got != "out\n" {
		t.Fatalf("stdout %q", got)
	}
	if got := h.output(proto.StreamStderr); got != "err\n" {
		t.Fatalf("stderr %q", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Started comes first, then each stream from seq 1, then the Exit.
	var kinds []string
	for _, f := range h.frames {
		switch f.Type {
		case proto.TypeData:
			kinds = append(kinds, "data"+strconv.Itoa(int(f.Stream))+"#"+strconv.FormatUint(f.Seq, 10))
			if time.Since(f.Time) > time.Minute || f.Time.IsZero() {
				t.Errorf("data time %v", f.Time)
			}
		default:
			kinds = append(kinds, f.Type.String())
		}
	}
	got := strings.Join(kinds, " ")
	if got != "started data1#1 data2#1 exit" && got != "started data2#1 data1#1 exit" {
		t.Fatalf("frames %s", got)
	}
	if h.started[0].Pid <= 0 {
		t.Fatalf("started %+v", h.started[0])
	}
	if a.stdout.String() != "out\n" || a.stderr.String() != "err\n" {
		t.Fatalf("agent's own copy: stdout %q stderr %q", a.stdout.String(), a.stderr.String())
	}
}

// seqOutput is what `seq 1 n` prints.
func seqOutput(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestFlowControlUnderSlowAcks(t *testing.T) {
	requireShell(t)
	const n = 2_700_000 // about 20 MB
	want := seqOutput(n)
	h := newHub(t, "agent-secret")
	h.stallEvery = 6 << 20 // stall acking for a while every 6 MB
	h.stallFor = 1500 * time.Millisecond
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 0))
	h.conn(t, 1)
	start := time.Now()
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("seq 1 " + strconv.Itoa(n))})
	if e := h.exit(t, 1); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	waitPost(t, res, 30*time.Second)
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("finished in %s: the hub's ack stalls did not hold the stream back", d)
	}
	got := h.output(proto.StreamStdout)
	if len(got) != len(want) || got != want {
		t.Fatalf("stdout: got %d bytes, want %d; equal=%v", len(got), len(want), got == want)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.maxInflight[proto.StreamStdout]; m > proto.Window || m == 0 {
		t.Fatalf("max unacknowledged %d bytes, window %d", m, proto.Window)
	}
	if h.dups != 0 {
		t.Fatalf("%d duplicates without any reconnect", h.dups)
	}
	if len(a.stdout.String()) != len(want) {
		t.Fatalf("agent's own stdout copy has %d bytes, want %d", len(a.stdout.String()), len(want))
	}
}

func TestReconnectMidStream(t *testing.T) {
	requireShell(t)
	const n = 700_000 // about 5 MB
	want := seqOutput(n)
	h := newHub(t, "agent-secret")
	h.holdAcks = true // store but do not acknowledge, so the agent must re-send
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 0))
	hc := h.conn(t, 1)
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("seq 1 " + strconv.Itoa(n))})

	// The agent sends one window and then waits for acks.
	h.waitFor(t, "a full window", 15*time.Second, func() bool {
		return h.cum[proto.StreamStdout] != nil && h.cum[proto.StreamStdout][h.stored[proto.StreamStdout]] > proto.Window-proto.MaxPayload
	})
	h.mu.Lock()
	storedBefore := h.stored[proto.StreamStdout]
	h.mu.Unlock()
	hc.close() // the connection dies mid-stream; the process keeps running
	hc2 := h.conn(t, 2)
	_ = hc2
	h.mu.Lock()
	hello := h.hellos[1]
	h.holdAcks = false
	h.notifyLocked()
	h.mu.Unlock()
	if hello.Running != 1 || hello.Acked[proto.StreamStdout] != 0 {
		t.Fatalf("hello after reconnect %+v", hello)
	}

	if e := h.exit(t, 1); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	waitPost(t, res, 30*time.Second)
	got := h.output(proto.StreamStdout)
	if got != want {
		t.Fatalf("stdout after dedup: %d bytes, want %d", len(got), len(want))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if uint64(h.dups) != storedBefore {
		t.Fatalf("%d duplicates, want the %d frames stored but unacked before the drop", h.dups, storedBefore)
	}
}
