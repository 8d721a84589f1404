package process

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

const testPath = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

func requireShell(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh on the host")
	}
}

// startSupervisor runs a Supervisor for the test's duration. Tests in this
// package never run in parallel: a Supervisor reaps every child.
func startSupervisor(t *testing.T, cfg Config) *Supervisor {
	t.Helper()
	s := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("supervisor: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

type result struct {
	stdout, stderr string
	status         Status
}

// collect reads p's output to the end and waits for its status.
func collect(t *testing.T, p *Proc, timeout time.Duration) result {
	t.Helper()
	var wg sync.WaitGroup
	var out, errb bytes.Buffer
	read := func(r io.Reader, b *bytes.Buffer) {
		defer wg.Done()
		if r == nil {
			return
		}
		if _, err := io.Copy(b, r); err != nil {
			t.Errorf("read output: %v", err)
		}
	}
	wg.Add(2)
	go read(p.Stdout(), &out)
	go read(p.Stderr(), &errb)
	done := make(chan struct{})
	go func() { wg.Wait(); <-p.Done(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.Kill()
		t.Fatalf("process %d did not finish within %s", p.Pid(), timeout)
	}
	p.Close()
	return result{out.String(), errb.String(), p.Status()}
}

func TestStartRunsProcess(t *testing.T) {
	requireShell(t)
	s := startSupervisor(t, Config{})
	newDir := filepath.Join(t.TempDir(), "a", "b")
	tests := []struct {
		name string
		proc proto.Process
		want result
	}{
		{"stdout and stderr are kept apart and the exit code is kept", proto.Process{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Env: []string{testPath}}, result{"out\n", "err\n", Status{Code: 3}}},
		{"env is exactly as given plus HOME", proto.Process{Args: []string{"sh", "-c", "env | sort"}, Env: []string{testPath, "A=1"}}, result{"A=1\nHOME=/root\n" + testPath + "\nPWD=/\nSHLVL=1\n_=/usr/bin/env\n", "", Status{}}},
		{"HOME from env is kept", proto.Process{Args: []string{"sh", "-c", "echo $HOME"}, Env: []string{testPath, "HOME=/x"}}, result{"/x\n", "", Status{}}},
		{"missing working dir is created", proto.Process{Args: []string{"pwd"}, Env: []string{testPath}, Dir: newDir}, result{newDir + "\n", "", Status{}}},
		{"stdin without OpenStdin is empty", proto.Process{Args: []string{"cat"}, Env: []string{testPath}}, result{"", "", Status{}}},
		{"killed by a signal is 128 plus signal", proto.Process{Args: []string{"sh", "-c", "kill -TERM $$"}, Env: []string{testPath}}, result{"", "", Status{Code: 143, Signal: 15}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Start(tt.proc)
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, p, 10*time.Second)
			if strings.Contains(tt.name, "env is exactly") {
				// Shells differ in the variables they export; keep the ones we set.
				got.stdout = filterLines(got.stdout, "A=", "HOME=", "PATH=")
				tt.want.stdout = filterLines(tt.want.stdout, "A=", "HOME=", "PATH=")
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func filterLines(s string, prefixes ...string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
			}
		}
	}
	return strings.Join(keep, "\n")
}

func TestStartFails(t *testing.T) {
	requireShell(t)
	passwd, group := writeUserDB(t)
	s := startSupervisor(t, Config{PasswdPath: passwd, GroupPath: group})
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		proc     proto.Process
		wantCode int
		wantMsg  string
	}{
		{"missing executable is 127", proto.Process{Args: []string{"nope"}, Env: []string{testPath}}, 127, `exec: "nope": executable file not found in $PATH`},
		{"PATH comes from the process env not the agent", proto.Process{Args: []string{"sh"}, Env: []string{"PATH=/nonexistent"}}, 127, `exec: "sh": executable file not found in $PATH`},
		{"not executable is 126", proto.Process{Args: []string{notDir}, Env: []string{testPath}}, 126, `exec: "` + notDir + `": permission denied`},
		{"unknown user is 126", proto.Process{Args: []string{"true"}, Env: []string{testPath}, User: "nope"}, 126, "unable to find user nope: no matching entries in passwd file"},
		{"working dir that is a file is 126", proto.Process{Args: []string{"true"}, Env: []string{testPath}, Dir: notDir}, 126, `chdir to cwd ("` + notDir + `") set in config.json failed: not a directory`},
		{"no command is 126", proto.Process{Env: []string{testPath}}, 126, "no command specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Start(tt.proc)
			var se *StartError
			if !errors.As(err, &se) {
				if p != nil {
					p.Kill()
				}
				t.Fatalf("err = %v, want *StartError", err)
			}
			if se.Code != tt.wantCode || se.Msg != tt.wantMsg {
				t.Fatalf("got %d %q, want %d %q", se.Code, se.Msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestStopKillsAndRefuses(t *testing.T) {
	requireShell(t)
	s := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	p, err := s.Start(proto.Process{Args: []string{"sleep", "100"}, Env: []string{testPath}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("process still running after the supervisor stopped")
	}
	if st := p.Status(); st.Code != 137 {
		t.Fatalf("status %+v, want killed", st)
	}
	p.Close()
	if _, err := s.Start(proto.Process{Args: []string{"true"}, Env: []string{testPath}}); !errors.Is(err, ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
}

func TestUserSwitch(t *testing.T) {
	requireShell(t)
	if os.Getuid() != 0 {
		t.Skip("switching user needs root")
	}
	passwd, group := writeUserDB(t)
	s := startSupervisor(t, Config{PasswdPath: passwd, GroupPath: group})
	tests := []struct {
		name string
		user string
		want string
	}{
		{"nobody by name", "nobody", "65534 65534 65534 /nonexistent\n"},
		{"name gets supplementary groups", "alice", "1000 1000 1000 10 29 /home/alice\n"},
		{"uid and gid", "4242:4343", "4242 4343 4343 /\n"},
		{"root by default", "", "0 0 0 10 /root\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Start(proto.Process{Args: []string{"sh", "-c", `echo $(id -u) $(id -g) $(id -G) $HOME`}, Env: []string{testPath}, User: tt.user, Dir: "/"})
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, p, 10*time.Second)
			if got.stdout != tt.want || got.status.Code != 0 {
				t.Fatalf("got %+v, want stdout %q", got, tt.want)
			}
		})
	}
}

func TestSignal(t *testing.T) {
	requireShell(t)
	s := startSupervisor(t, Config{})
	tests := []struct {
		name string
		args []string
		sig  syscall.Signal
		want Status
	}{
		{"trapped USR1 exits with the trap's code", []string{"sh", "-c", `trap "exit 42" USR1; echo ready; while true; do sleep 0.1; done`}, syscall.SIGUSR1, Status{Code: 42}},
		{"TERM kills sleep with 143", []string{"sh", "-c", "echo ready; exec sleep 100"}, syscall.SIGTERM, Status{Code: 143, Signal: 15}},
		{"KILL is 137", []string{"sh", "-c", "echo ready; exec sleep 100"}, syscall.SIGKILL, Status{Code: 137, Signal: 9}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Start(proto.Process{Args: tt.args, Env: []string{testPath}})
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			if _, err := io.ReadFull(p.Stdout(), buf); err != nil || string(buf) != "ready\n" {
				t.Fatalf("read ready: %q %v", buf, err)
			}
			if err := p.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			got := collect(t, p, 10*time.Second)
			if got.status != tt.want {
				t.Fatalf("status %+v, want %+v", got.status, tt.want)
			}
			if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrExited) {
				t.Fatalf("signal after exit: %v, want ErrExited", err)
			}
		})
	}
}

func TestStdin(t *testing.T) {
	requireShell(t)
	s := startSupervisor(t, Config{})
	p, err := s.Start(proto.Process{Args: []string{"sh", "-c", "cat; echo done"}, Env: []string{testPath}, OpenStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	p.WriteStdin([]byte("hello "))
	p.WriteStdin([]byte("world\n"))
	p.CloseStdin()
	got := collect(t, p, 10*time.Second)
	if got.stdout != "hello world\ndone\n" || got.status.Code != 0 {
		t.Fatalf("got %+v", got)
	}
}

func TestTty(t *testing.T) {
	requireShell(t)
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skip("needs /dev/ptmx")
	}
	s := startSupervisor(t, Config{})
	tests := []struct {
		name      string
		args      []string
		openStdin bool
		input     string
		want      string
	}{
		{"stdout and stderr both come out of the terminal", []string{"sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo out && echo err >&2 && stty size"}, false, "", "out\r\nerr\r\n24 80\r\n"},
		{"input goes through the terminal", []string{"sh", "-c", "stty -echo; echo ready; read x; echo got $x"}, true, "hi\n", "ready\r\ngot hi\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.Start(proto.Process{Args: tt.args, Env: []string{testPath}, Tty: true, OpenStdin: tt.openStdin})
			if err != nil {
				t.Fatal(err)
			}
			if p.Stderr() != nil {
				t.Fatal("tty process has a separate stderr")
			}
			if tt.input != "" {
				buf := make([]byte, len("ready\r\n"))
				if _, err := io.ReadFull(p.Stdout(), buf); err != nil {
					t.Fatal(err)
				}
				p.WriteStdin([]byte(tt.input))
				got := collect(t, p, 10*time.Second)
				got.stdout = string(buf) + got.stdout
				if got.stdout != tt.want {
					t.Fatalf("stdout %q, want %q", got.stdout, tt.want)
				}
				return
			}
			got := collect(t, p, 10*time.Second)
			if got.stdout != tt.want || got.status.Code != 0 {
				t.Fatalf("got %+v, want stdout %q", got, tt.want)
			}
		})
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// exists reports whether pid exists at all (a zombie too).
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func TestLeftovers(t *testing.T) {
	requireShell(t)
	s := startSupervisor(t, Config{DrainGrace: 300 * time.Millisecond})
	tests := []struct {
		name string
		args []string
	}{
		// sh exits at once; its background child is in its process group and
		// is killed, then reaped by the supervisor as subreaper.
		{"background child is killed and reaped", []string{"sh", "-c", "sleep 30 & echo $!"}},
		// A child in its own session holding stdout open does not hold the
		// stream open after the main process exits.
		{"detached child holding the pipe does not keep output open", []string{"sh", "-c", "setsid sleep 30 & echo $!"}},
		// An orphan that exits by itself is reaped, not left a zombie.
		{"orphan exiting later is reaped", []string{"sh", "-c", "setsid sh -c 'sleep 0.3' </dev/null >/dev/null 2>&1 & echo $!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(strings.Join(tt.args, " "), "setsid") {
				if _, err := os.Stat("/usr/bin/setsid"); err != nil {
					t.Skip("needs setsid")
				}
			}
			p, err := s.Start(proto.Process{Args: tt.args, Env: []string{testPath}})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			got := collect(t, p, 10*time.Second)
			if time.Since(start) > 5*time.Second {
				t.Fatalf("output took %s to end", time.Since(start))
			}
			child, err := strconv.Atoi(strings.TrimSpace(got.stdout))
			if err != nil {
				t.Fatalf("stdout %q: %v", got.stdout, err)
			}
			if strings.Contains(tt.name, "detached") {
				syscall.Kill(child, syscall.SIGKILL) // not ours to keep
			}
			deadline := time.Now().Add(5 * time.Second)
			for exists(child) {
				if time.Now().After(deadline) {
					t.Fatalf("pid %d still exists (alive=%v)", child, alive(child))
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
