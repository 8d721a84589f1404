package server

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// Stream numbers the tests give their execs, as the control plane allocates
// them: from proto.FirstExecStream on.
const (
	execOut   = proto.FirstExecStream
	execErr   = proto.FirstExecStream + 1
	execIn    = proto.FirstExecStream + 2
	exec2Out  = proto.FirstExecStream + 3
	exec2Err  = proto.FirstExecStream + 4
	exec2In   = proto.FirstExecStream + 5
	noSuchIn  = proto.FirstExecStream + 99
	mainSleep = "exec sleep 100"
)

// container is an invocation whose main process runs: execs go into it.
type container struct {
	h   *hub
	a   *agent
	res <-chan postResult
}

// runContainer starts an agent, invokes it with linger seconds and runs main
// as run 1. The container is removed (Shutdown) when the test ends.
func runContainer(t *testing.T, main proto.Process, linger int, mod func(*Config)) *container {
	t.Helper()
	requireShell(t)
	c := &container{h: newHub(t, "agent-secret"), a: startAgent(t, mod)}
	c.res = c.a.invoke(invocation(c.h, linger))
	c.h.conn(t, 1)
	c.h.send(t, proto.TypeStart, proto.Start{Run: 1, Process: main})
	c.h.startedRun(t, 1)
	t.Cleanup(func() {
		// The instance may have ended already (no linger): then the
		// Shutdown finds no connection, which is fine.
		c.h.mu.Lock()
		hc := c.h.conns[len(c.h.conns)-1]
		c.h.mu.Unlock()
		_ = hc.control(proto.TypeShutdown, nil)
		waitPost(t, c.res, 15*time.Second)
	})
	return c
}

// exec starts exec id on the test's first stream numbers.
func (c *container) exec(t *testing.T, id string, p proto.Process) {
	t.Helper()
	c.h.send(t, proto.TypeExecStart, proto.ExecStart{ID: id, Stdout: execOut, Stderr: execErr, Stdin: execIn, Process: p})
}

// stdin sends input (or, with close, the end of input) on stream.
func (c *container) stdin(t *testing.T, stream uint32, data string) {
	t.Helper()
	c.h.sendFrame(t, proto.Frame{Type: proto.TypeStdin, Stream: stream, Payload: []byte(data)})
}

func (c *container) stdinClose(t *testing.T, stream uint32) {
	t.Helper()
	c.h.sendFrame(t, proto.Frame{Type: proto.TypeStdinClose, Stream: stream})
}

func TestExecOutputAndExit(t *testing.T) {
	c := runContainer(t, sh(mainSleep), 0, nil)
	c.exec(t, "e1", sh("echo out; echo err >&2; exit 7"))
	e := c.h.execExit(t, "e1")
	if e.Code != 7 || e.Signal != 0 || e.Error != "" {
		t.Fatalf("exec exit %+v, want code 7", e)
	}
	if s := c.h.startedExec(t, "e1"); s.Pid <= 0 {
		t.Fatalf("exec started %+v", s)
	}
	if got := c.h.output(execOut); got != "out\n" {
		t.Fatalf("exec stdout %q", got)
	}
	if got := c.h.output(execErr); got != "err\n" {
		t.Fatalf("exec stderr %q", got)
	}
	if out, errOut := c.h.output(proto.StreamStdout), c.h.output(proto.StreamStderr); out != "" || errOut != "" {
		t.Fatalf("exec output on the main streams: stdout %q stderr %q", out, errOut)
	}
	if s := c.a.stdout.String() + c.a.stderr.String(); s != "" {
		t.Fatalf("exec output in the container's log copy: %q", s)
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	var kinds []string
	for _, f := range c.h.frames {
		switch f.Type {
		case proto.TypeData:
			kinds = append(kinds, "data"+strconv.Itoa(int(f.Stream)))
		case proto.TypeExecStarted, proto.TypeExecExit:
			kinds = append(kinds, f.Type.String())
		}
	}
	got := strings.Join(kinds, " ")
	if got != "exec-started data4 data5 exec-exit" && got != "exec-started data5 data4 exec-exit" {
		t.Fatalf("frames %s, want exec-started, the output, then exec-exit", got)
	}
}

func TestExecStartFailure(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"missing binary is 127", []string{"nope"}, 127, `exec: "nope": executable file not found in $PATH`},
		{"directory is 126", []string{"/"}, 126, `exec: "/": is a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runContainer(t, sh(mainSleep), 0, nil)
			c.exec(t, "bad", proto.Process{Args: tt.args, Env: []string{testPath}})
			e := c.h.execExit(t, "bad")
			if e.Code != tt.wantCode || e.Error != tt.wantErr {
				t.Fatalf("exec exit %+v, want code %d error %q", e, tt.wantCode, tt.wantErr)
			}
			c.h.mu.Lock()
			defer c.h.mu.Unlock()
			if len(c.h.execStarted) != 0 {
				t.Fatalf("exec started %+v for a process that never ran", c.h.execStarted)
			}
		})
	}
}

func TestExecStdin(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   string
	}{
		{"cat echoes its input", "cat", "hello\n"},
		{"output goes on after stdin closes", "cat; echo after-eof", "hello\nafter-eof\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runContainer(t, sh(mainSleep), 0, nil)
			p := sh(tt.script)
			p.OpenStdin = true
			c.exec(t, "in", p)
			c.h.startedExec(t, "in")
			c.stdin(t, execIn, "hello\n")
			c.stdinClose(t, execIn)
			if e := c.h.execExit(t, "in"); e.Code != 0 {
				t.Fatalf("exec exit %+v", e)
			}
			if got := c.h.output(execOut); got != tt.want {
				t.Fatalf("exec stdout %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStdinRoutedByStream(t *testing.T) {
	main := sh("cat; echo main-end")
	main.OpenStdin = true
	c := runContainer(t, main, 0, nil)
	p := sh("cat; echo exec-end")
	p.OpenStdin = true
	c.exec(t, "in", p)
	c.h.startedExec(t, "in")

	c.stdin(t, proto.StreamStdin, "to-main\n")
	c.stdin(t, execIn, "to-exec\n")
	c.stdin(t, proto.StreamControl, "to-main-compat\n")
	c.stdin(t, noSuchIn, "lost\n")
	c.stdinClose(t, noSuchIn)
	c.h.waitOutput(t, proto.StreamStdout, "to-main-compat\n")
	c.h.waitOutput(t, execOut, "to-exec\n")

	c.stdinClose(t, execIn)
	if e := c.h.execExit(t, "in"); e.Code != 0 {
		t.Fatalf("exec exit %+v", e)
	}
	c.stdinClose(t, proto.StreamStdin)
	if e := c.h.exit(t, 1); e.Code != 0 {
		t.Fatalf("main exit %+v", e)
	}
	if got := c.h.output(proto.StreamStdout); got != "to-main\nto-main-compat\nmain-end\n" {
		t.Fatalf("main stdout %q", got)
	}
	if got := c.h.output(execOut); got != "to-exec\nexec-end\n" {
		t.Fatalf("exec stdout %q", got)
	}
}

func TestExecTTY(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols uint16
		want       string
	}{
		{"initial size is the one asked", 33, 101, "33 101\r\n"},
		{"no size is 24x80", 0, 0, "24 80\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runContainer(t, sh(mainSleep), 0, nil)
			p := sh("stty size; echo err >&2")
			p.Tty = true
			c.h.send(t, proto.TypeExecStart, proto.ExecStart{ID: "tty", Stdout: execOut, Stderr: execErr, Stdin: execIn, Process: p, Rows: tt.rows, Cols: tt.cols})
			if e := c.h.execExit(t, "tty"); e.Code != 0 {
				t.Fatalf("exec exit %+v", e)
			}
			if got := c.h.output(execOut); got != tt.want+"err\r\n" {
				t.Fatalf("tty output %q, want %q then stderr on the same stream", got, tt.want)
			}
			if got := c.h.output(execErr); got != "" {
				t.Fatalf("stderr stream of a tty exec %q", got)
			}
		})
	}
}

func TestResize(t *testing.T) {
	script := "stty size; read line; stty size"
	tests := []struct {
		name    string
		exec    string // "" resizes the main process
		stdin   uint32
		out     uint32
		initial string
	}{
		{"exec gets its new size", "tty", execIn, execOut, "33 101"},
		{"main process gets its new size", "", proto.StreamStdin, proto.StreamStdout, "24 80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sh(script)
			p.Tty, p.OpenStdin = true, true
			main := sh(mainSleep)
			if tt.exec == "" {
				main = p
			}
			c := runContainer(t, main, 1, nil)
			if tt.exec != "" {
				c.h.send(t, proto.TypeExecStart, proto.ExecStart{ID: tt.exec, Stdout: execOut, Stderr: execErr, Stdin: execIn, Process: p, Rows: 33, Cols: 101})
			}
			c.h.waitOutput(t, tt.out, tt.initial+"\r\n")
			c.h.send(t, proto.TypeResize, proto.Resize{Exec: tt.exec, Rows: 40, Cols: 120})
			c.stdin(t, tt.stdin, "\n")
			c.h.waitOutput(t, tt.out, "40 120\r\n")
		})
	}
}

func TestResizeNonTTYIsNoop(t *testing.T) {
	c := runContainer(t, sh(mainSleep), 0, nil)
	p := sh("read line; echo done")
	p.OpenStdin = true
	c.exec(t, "plain", p)
	c.h.startedExec(t, "plain")
	c.h.send(t, proto.TypeResize, proto.Resize{Exec: "plain", Rows: 40, Cols: 120})
	c.h.send(t, proto.TypeResize, proto.Resize{Rows: 40, Cols: 120})
	c.stdin(t, execIn, "\n")
	if e := c.h.execExit(t, "plain"); e.Code != 0 {
		t.Fatalf("exec exit %+v", e)
	}
	if got := c.h.output(execOut); got != "done\n" {
		t.Fatalf("exec stdout %q", got)
	}
}

func TestConcurrentExecs(t *testing.T) {
	c := runContainer(t, sh(mainSleep), 0, nil)
	flag := filepath.Join(t.TempDir(), "flag")
	// The first exec can only finish once the second has run: both must
	// run at the same time.
	c.h.send(t, proto.TypeExecStart, proto.ExecStart{ID: "first", Stdout: execOut, Stderr: execErr, Stdin: execIn,
		Process: sh("echo first-up; while [ ! -e " + flag + " ]; do sleep 0.05; done; echo first-done; exit 1")})
	c.h.waitOutput(t, execOut, "first-up\n")
	c.h.send(t, proto.TypeExecStart, proto.ExecStart{ID: "second", Stdout: exec2Out, Stderr: exec2Err, Stdin: exec2In,
		Process: sh("echo second >&2; touch " + flag + "; exit 2")})
	first, second := c.h.execExit(t, "first"), c.h.execExit(t, "second")
	if first.Code != 1 || second.Code != 2 {
		t.Fatalf("exits %+v %+v, want codes 1 and 2", first, second)
	}
	outputs := map[uint32]string{execOut: "first-up\nfirst-done\n", execErr: "", exec2Out: "", exec2Err: "second\n"}
	for stream, want := range outputs {
		if got := c.h.output(stream); got != want {
			t.Errorf("stream %d: %q, want %q", stream, got, want)
		}
	}
	if _, err := os.Stat(flag); err != nil {
		t.Fatalf("the second exec did not run: %v", err)
	}
}

func TestExecKilledWhenMainProcessEnds(t *testing.T) {
	tests := []struct {
		name     string
		end      func(t *testing.T, c *container)
		mainCode int
	}{
		{"main process killed", func(t *testing.T, c *container) {
			c.h.send(t, proto.TypeSignal, proto.Signal{Signal: int(syscall.SIGKILL)})
		}, 137},
		{"main process exits by itself", func(t *testing.T, c *container) {
			c.stdinClose(t, proto.StreamStdin)
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main := sh("read line; exit 0")
			main.OpenStdin = true
			c := runContainer(t, main, 5, nil)
			c.exec(t, "long", sh("echo up; exec sleep 100"))
			pid := c.h.startedExec(t, "long").Pid
			c.h.waitOutput(t, execOut, "up\n")
			// The exec dies with the process, not when the hub stores the exit.
			c.h.mu.Lock()
			c.h.noExitAck = true
			c.h.mu.Unlock()
			tt.end(t, c)
			if e := c.h.exit(t, 1); e.Code != tt.mainCode {
				t.Fatalf("main exit %+v, want code %d", e, tt.mainCode)
			}
			e := c.h.execExit(t, "long")
			if e.Code != 137 || e.Signal != int(syscall.SIGKILL) {
				t.Fatalf("exec exit %+v, want 137 by SIGKILL", e)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Fatalf("exec process %d still exists", pid)
			}
		})
	}
}

func TestExecExitResentUntilAck(t *testing.T) {
	tests := []struct {
		name      string
		resend    time.Duration
		reconnect bool
	}{
		{"re-sent on a timer", 200 * time.Millisecond, false},
		{"re-sent after a reconnect", time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := runContainer(t, sh(mainSleep), 0, func(cfg *Config) { cfg.Session.ExitResend = tt.resend })
			c.h.mu.Lock()
			c.h.noExecExitAck = true
			c.h.mu.Unlock()
			c.exec(t, "quiet", sh("echo bye; exit 3"))
			c.h.execExit(t, "quiet")
			if tt.reconnect {
				c.h.conn(t, 1).close()
				c.h.conn(t, 2)
			}
			c.h.waitFor(t, "exec exit sent again", 10*time.Second, func() bool {
				n := 0
				for _, x := range c.h.execExits {
					if x.ID == "quiet" && x.Code == 3 {
						n++
					}
				}
				return n >= 2
			})
			c.h.send(t, proto.TypeExecExitAck, proto.ExecExitAck{ID: "quiet"})
			time.Sleep(100 * time.Millisecond) // an exit already on the wire may still land
			settled := c.h.execExitCount("quiet")
			time.Sleep(3 * 200 * time.Millisecond)
			if n := c.h.execExitCount("quiet"); n != settled {
				t.Fatalf("exec exit sent %d more times after its ack", n-settled)
			}
			if got := c.h.output(execOut); got != "bye\n" {
				t.Fatalf("exec stdout %q", got)
			}
		})
	}
}

func TestExecOutputSurvivesReconnect(t *testing.T) {
	const n = 700_000 // about 5 MB
	want := seqOutput(n)
	c := runContainer(t, sh(mainSleep), 0, nil)
	c.h.mu.Lock()
	c.h.holdAcks = true // store but do not acknowledge, so the agent must re-send
	c.h.mu.Unlock()
	c.exec(t, "big", sh("seq 1 "+strconv.Itoa(n)))
	c.h.waitFor(t, "a full window", 15*time.Second, func() bool {
		cum := c.h.cum[execOut]
		return cum != nil && cum[c.h.stored[execOut]] > proto.Window-proto.MaxPayload
	})
	c.h.conn(t, 1).close()
	c.h.conn(t, 2)
	c.h.mu.Lock()
	c.h.holdAcks = false
	c.h.notifyLocked()
	c.h.mu.Unlock()
	if e := c.h.execExit(t, "big"); e.Code != 0 {
		t.Fatalf("exec exit %+v", e)
	}
	if got := c.h.output(execOut); got != want {
		t.Fatalf("exec stdout after dedup: %d bytes, want %d", len(got), len(want))
	}
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if m := c.h.maxInflight[execOut]; m > proto.Window || m == 0 {
		t.Fatalf("max unacknowledged %d bytes, window %d", m, proto.Window)
	}
	if c.h.dups == 0 {
		t.Fatal("no frame was re-sent after the reconnect")
	}
}
