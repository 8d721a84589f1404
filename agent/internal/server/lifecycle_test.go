package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

func TestSignals(t *testing.T) {
	requireShell(t)
	tests := []struct {
		name     string
		script   string
		sig      syscall.Signal
		wantCode int
		wantSig  int
	}{
		{"trapped USR1 exits 42", `trap "exit 42" USR1; echo ready; while true; do sleep 0.1; done`, syscall.SIGUSR1, 42, 0},
		{"TERM kills sleep with 143", "echo ready; exec sleep 100", syscall.SIGTERM, 143, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHub(t, "agent-secret")
			a := startAgent(t, nil)
			res := a.invoke(invocation(h, 0))
			h.conn(t, 1)
			h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh(tt.script)})
			h.waitOutput(t, proto.StreamStdout, "ready\n")
			h.send(t, proto.TypeSignal, proto.Signal{Signal: int(tt.sig)})
			e := h.exit(t, 1)
			if e.Code != tt.wantCode || e.Signal != tt.wantSig {
				t.Fatalf("exit %+v, want code %d signal %d", e, tt.wantCode, tt.wantSig)
			}
			waitPost(t, res, 10*time.Second)
		})
	}
}

func TestStartFailure(t *testing.T) {
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 0))
	h.conn(t, 1)
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: proto.Process{Args: []string{"nope"}, Env: []string{testPath}}})
	e := h.exit(t, 1)
	if e.Code != 127 || e.Error != `exec: "nope": executable file not found in $PATH` {
		t.Fatalf("exit %+v", e)
	}
	waitPost(t, res, 10*time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.started) != 0 {
		t.Fatalf("started %+v for a process that never ran", h.started)
	}
}

func TestUserNobody(t *testing.T) {
	requireShell(t)
	if os.Getuid() != 0 {
		t.Skip("switching user needs root")
	}
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644)
	os.WriteFile(group, []byte("root:x:0:\nnogroup:x:65534:\nextra:x:777:nobody\n"), 0o644)
	h := newHub(t, "agent-secret")
	a := startAgent(t, func(c *Config) { c.Process.PasswdPath, c.Process.GroupPath = passwd, group })
	res := a.invoke(invocation(h, 0))
	h.conn(t, 1)
	p := sh(`echo $(id -u) $(id -g) $(id -G) $HOME`)
	p.User = "nobody"
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: p})
	if e := h.exit(t, 1); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	waitPost(t, res, 10*time.Second)
	if got := h.output(proto.StreamStdout); got != "65534 65534 65534 777 /nonexistent\n" {
		t.Fatalf("stdout %q", got)
	}
}

func TestShutdownEndsInvocation(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 600))
	h.conn(t, 1)
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("exec sleep 100")})
	pid := h.startedRun(t, 1).Pid
	h.sendFrame(t, proto.Frame{Type: proto.TypeShutdown})
	r := waitPost(t, res, 10*time.Second)
	if r.status != http.StatusOK || r.body["status"] != "done" {
		t.Fatalf("POST answered %d %v", r.status, r.body)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		t.Fatalf("process %d still exists after shutdown", pid)
	}
	a.awaitServed(t, 15*time.Second, "the invocation ended")
}

func TestLingerAndRestart(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 1))
	h.conn(t, 1)
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("echo one; touch /tmp/.agent-test-marker-$PPID")})
	h.exit(t, 1)
	// docker start of the exited container, within the linger time.
	time.Sleep(300 * time.Millisecond)
	h.send(t, proto.TypeStart, proto.Start{Run: 2, Process: sh("echo two")})
	h.exit(t, 2)
	exited := time.Now()
	r := waitPost(t, res, 10*time.Second)
	if d := time.Since(exited); d < 700*time.Millisecond {
		t.Fatalf("instance ended %s after the last exit, before its linger time", d)
	}
	if r.status != http.StatusOK {
		t.Fatalf("POST answered %d %v", r.status, r.body)
	}
	if got := h.output(proto.StreamStdout); got != "one\ntwo\n" {
		t.Fatalf("stdout %q", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var seqs []uint64
	for _, f := range h.frames {
		if f.Type == proto.TypeData {
			seqs = append(seqs, f.Seq)
		}
	}
	if len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
		t.Fatalf("stdout seqs %v, want 1 2 across runs", seqs)
	}
}

func TestStdin(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 0))
	h.conn(t, 1)
	p := sh("cat; echo end")
	p.OpenStdin = true
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: p})
	h.startedRun(t, 1)
	h.sendFrame(t, proto.Frame{Type: proto.TypeStdin, Payload: []byte("hello\n")})
	h.sendFrame(t, proto.Frame{Type: proto.TypeStdinClose})
	if e := h.exit(t, 1); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	waitPost(t, res, 10*time.Second)
	if got := h.output(proto.StreamStdout); got != "hello\nend\n" {
		t.Fatalf("stdout %q", got)
	}
}

func TestAgentSIGTERM(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)
	res := a.invoke(invocation(h, 600))
	h.conn(t, 1)
	h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: sh("exec sleep 100")})
	h.startedRun(t, 1)
	a.sigs <- syscall.SIGTERM // the platform stops the instance
	if e := h.exit(t, 1); e.Code != 143 {
		t.Fatalf("exit %+v, want 143", e)
	}
	// Now idle (lingering): a second SIGTERM ends the instance.
	a.sigs <- syscall.SIGTERM
	waitPost(t, res, 10*time.Second)
}

func TestIdleSIGTERMEndsServe(t *testing.T) {
	a := startAgent(t, nil)
	a.sigs <- syscall.SIGTERM
	a.awaitServed(t, 10*time.Second, "SIGTERM")
}

func TestHTTP(t *testing.T) {
	requireShell(t)
	h := newHub(t, "agent-secret")
	a := startAgent(t, nil)

	resp, err := http.Get(a.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}

	tests := []struct {
		name string
		body string
		want int
	}{
		{"bad JSON is 400", "{", http.StatusBadRequest},
		{"missing secret is 400", `{"containerId":"c","callbackUrl":"ws://x"}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(a.base+"/", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}

	res := a.invoke(invocation(h, 0))
	h.conn(t, 1)
	t.Run("second invocation while serving is 429", func(t *testing.T) {
		r := waitPost(t, a.invoke(invocation(h, 0)), 5*time.Second)
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("status %d, want 429", r.status)
		}
	})
	t.Run("resuming another container is 409 at once", func(t *testing.T) {
		r := waitPost(t, a.invoke(proto.Invocation{ContainerID: "other", Resume: true}), 5*time.Second)
		if r.status != http.StatusConflict {
			t.Fatalf("status %d, want 409", r.status)
		}
	})
	// A resumed invocation of the served container (its first POST was cut
	// by a control plane restart) stays open until the instance ends.
	resumed := a.invoke(proto.Invocation{ContainerID: "c0ffee", Resume: true})
	select {
	case r := <-resumed:
		t.Fatalf("resumed invocation answered while the container runs: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	h.sendFrame(t, proto.Frame{Type: proto.TypeShutdown})
	waitPost(t, res, 10*time.Second)
	if r := waitPost(t, resumed, 10*time.Second); r.status != http.StatusOK || r.body["status"] != "done" {
		t.Fatalf("resumed invocation answered %d %v, want 200 done", r.status, r.body)
	}
}

func TestResumeOnAFreshInstanceIs409(t *testing.T) {
	a := startAgent(t, nil)
	r := waitPost(t, a.invoke(proto.Invocation{ContainerID: "c0ffee", Resume: true}), 5*time.Second)
	if r.status != http.StatusConflict {
		t.Fatalf("status %d, want 409", r.status)
	}
}

func TestHubUnreachable(t *testing.T) {
	h := newHub(t, "other-secret") // refuses the agent's secret
	a := startAgent(t, func(c *Config) { c.Session.GiveUpAfter = 500 * time.Millisecond })
	res := a.invoke(invocation(h, 0))
	r := waitPost(t, res, 15*time.Second)
	if r.status != http.StatusBadGateway || !strings.Contains(r.body["message"], "hub unreachable") {
		t.Fatalf("POST answered %d %v", r.status, r.body)
	}
	if strings.Contains(r.body["message"], "agent-secret") {
		t.Fatal("secret in the response")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused < 2 {
		t.Fatalf("the agent gave up after %d refused dials", h.refused)
	}
}

// An agent calling back for an instance the control plane has ended (it
// gave up on the start) is refused for good: the instance ends at once,
// long before the hub would count as unreachable, and stops listening
// before it answers, so the platform takes no further request to it.
func TestEndedInstanceEndsAtOnce(t *testing.T) {
	h := newHub(t, "agent-secret")
	h.ended = true
	a := startAgent(t, func(c *Config) { c.Session.GiveUpAfter = time.Hour })
	r := waitPost(t, a.invoke(invocation(h, 600)), 15*time.Second)
	if r.status != http.StatusBadGateway || !strings.Contains(r.body["message"], "ended this instance") {
		t.Fatalf("POST answered %d %v, want 502 saying the instance was ended", r.status, r.body)
	}
	if _, err := http.Get(a.base + "/healthz"); err == nil {
		t.Fatal("the ended instance still accepts connections")
	}
	a.awaitServed(t, 15*time.Second, "the instance was ended")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refused != 1 {
		t.Fatalf("dialed %d times, want 1", h.refused)
	}
}
