package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyDocker runs the docker CLI on a pseudo-terminal of the given size, as
// a person at a terminal would, and returns a reader of its screen output.
type ptyRun struct {
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startPty(t *testing.T, host string, rows, cols uint16, args ...string) *ptyRun {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_CONFIG="+dockerConfigDir(t), "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyRun{cmd: cmd, tty: f, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); f.Close() })
	return p
}

func (p *ptyRun) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitScreen waits until the output contains s.
func (p *ptyRun) waitScreen(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.screen(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q; it shows %q", s, p.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *ptyRun) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.tty, s); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the CLI to exit and returns its exit code.
func (p *ptyRun) wait(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-ctx.Done():
		t.Fatalf("docker did not exit; screen: %q", p.screen())
		return -1
	}
}

func TestExecTTYFollowsTerminalSize(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			name := "tty-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", name, "busybox", "sleep", "300")
			defer docker(t, h.host, "rm", "-f", name)
			p := startPty(t, h.host, 33, 101, "exec", "-it", name, "sh")
			p.send(t, "stty size\r")
			p.waitScreen(t, "33 101")
			if err := pty.Setsize(p.tty, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond) // the CLI forwards SIGWINCH as a resize
			p.send(t, "stty size\r")
			p.waitScreen(t, "40 120")
			p.send(t, "echo $((6*7))\r")
			p.waitScreen(t, "42")
			p.send(t, "exit 5\r")
			if code := p.wait(t); code != 5 {
				t.Fatalf("exec -it exit code %d, want 5", code)
			}
		})
	}
}

func TestRunInteractiveTTY(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			p := startPty(t, h.host, 30, 90, "run", "--rm", "-it", "busybox", "sh")
			p.send(t, "stty size; tty\r")
			p.waitScreen(t, "30 90")
			p.waitScreen(t, "/dev/pts/")
			p.send(t, "exit 3\r")
			if code := p.wait(t); code != 3 {
				t.Fatalf("run -it exit code %d, want 3; screen %q", code, p.screen())
			}
		})
	}
}

func TestDetachKeysLeaveTheContainerRunning(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			name := "detach-" + h.name
			p := startPty(t, h.host, 24, 80, "run", "-it", "--name", name, "busybox", "sh")
			defer docker(t, h.host, "rm", "-f", name)
			p.waitScreen(t, "/ # ") // the CLI has the terminal in raw mode now
			p.send(t, "echo before-$((1+1))\r")
			p.waitScreen(t, "before-2")
			p.send(t, "\x10\x11")
			if code := p.wait(t); code != 0 {
				t.Fatalf("detach exit code %d; screen %q", code, p.screen())
			}
			if st := inspect(t, h.host, name)["State"].(map[string]any); st["Running"] != true {
				t.Fatalf("container stopped after detach: %v", st)
			}
			a := startPty(t, h.host, 24, 80, "attach", name)
			time.Sleep(500 * time.Millisecond) // attach prints nothing until input
			a.send(t, "echo after-$((2+2))\r")
			a.waitScreen(t, "after-4")
			a.send(t, "exit 4\r")
			if code := a.wait(t); code != 4 {
				t.Fatalf("attach exit code %d; screen %q", code, a.screen())
			}
		})
	}
}

// A TTY container starts at the console size given at create (API ≥
// 1.42), before any client sends a resize.
func TestTTYStartsAtTheConsoleSize(t *testing.T) {
	s := requireStack(t)
	mustDocker(t, s.direct, "pull", "busybox")
	body := []byte(`{"Image":"busybox","Cmd":["stty","size"],"Tty":true,"HostConfig":{"ConsoleSize":[33,77]}}`)
	resp, out := s.apiRequest(t, "POST", "/v1.45/containers/create", body, true)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, out)
	}
	var created struct{ Id string }
	if err := json.Unmarshal(out, &created); err != nil {
		t.Fatal(err)
	}
	defer docker(t, s.direct, "rm", "-f", created.Id)
	if resp, out := s.apiRequest(t, "POST", "/v1.45/containers/"+created.Id+"/start", nil, true); resp.StatusCode != 204 {
		t.Fatalf("start: %d %s", resp.StatusCode, out)
	}
	mustDocker(t, s.direct, "wait", created.Id)
	if got := mustDocker(t, s.direct, "logs", created.Id); strings.TrimSpace(got) != "33 77" {
		t.Fatalf("stty size in a TTY container created with ConsoleSize 33x77 = %q", got)
	}
}
