package procinfo

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// state reads the state letter of pid from /proc (T: stopped).
func state(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

// SignalTree stops and resumes every descendant of a process (here a
// shell's background job and its child), and nothing else.
func TestSignalTreeFreezesDescendants(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	cmd := exec.Command("/bin/sh", "-c", "sh -c 'sleep 30 & wait' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		SignalTree("/proc", cmd.Process.Pid, syscall.SIGKILL)
		cmd.Process.Kill()
		cmd.Wait()
	})
	var pids []int
	deadline := time.Now().Add(5 * time.Second)
	for len(pids) < 2 && time.Now().Before(deadline) {
		var err error
		if pids, err = Descendants("/proc", cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 2 || slices.Contains(pids, cmd.Process.Pid) {
		t.Fatalf("descendants of %d: %v, want the inner shell and its sleep", cmd.Process.Pid, pids)
	}
	for _, tt := range []struct {
		sig  syscall.Signal
		want string
	}{{syscall.SIGSTOP, "T"}, {syscall.SIGCONT, "S"}} {
		n, err := SignalTree("/proc", cmd.Process.Pid, tt.sig)
		if err != nil || n != 2 {
			t.Fatalf("SignalTree(%v) = %d, %v; want 2 signalled", tt.sig, n, err)
		}
		for _, pid := range pids {
			waitState(t, pid, tt.want)
		}
		if got := state(t, cmd.Process.Pid); got == "T" {
			t.Fatalf("the root process itself was stopped")
		}
	}
}

func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := state(t, pid)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is in state %s, want %s", pid, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// helperEnv makes the test binary, run by TestSignalTreeHidesStopsFromParents,
// act as a parent that waits for its child with WUNTRACED, as a shell with
// job control does.
const helperEnv = "PROCINFO_TEST_WAITER"

// TestWaiterHelper is that parent when helperEnv is set (a no-op otherwise):
// it starts a sleep, prints "ready", and prints "stopped" whenever wait4
// reports the sleep stopped.
func TestWaiterHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process of TestSignalTreeHidesStopsFromParents")
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(child.Process.Pid, &ws, syscall.WUNTRACED, nil); err != nil {
			if err == syscall.EINTR {
				continue
			}
			os.Exit(1)
		}
		if ws.Stopped() {
			fmt.Println("stopped")
			continue
		}
		os.Exit(0)
	}
}

// Pause and unpause cycles never let a parent see its child stopped: parents
// stop first and continue last.
func TestSignalTreeHidesStopsFromParents(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("needs sleep")
	}
	waiter := exec.Command(os.Args[0], "-test.run=^TestWaiterHelper$")
	waiter.Env = append(os.Environ(), helperEnv+"=1")
	out, err := waiter.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		SignalTree("/proc", waiter.Process.Pid, syscall.SIGKILL)
		waiter.Process.Kill()
		waiter.Wait()
	})
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("helper did not start: %q", lines.Text())
	}
	seen := make(chan string, 100)
	go func() {
		for lines.Scan() {
			seen <- lines.Text()
		}
		close(seen)
	}()
	for i := range 20 {
		for _, sig := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGCONT} {
			// the waiter (a child of this test) and its sleep
			if n, err := SignalTree("/proc", os.Getpid(), sig); err != nil || n < 2 {
				t.Fatalf("cycle %d: SignalTree(%v) = %d, %v", i, sig, n, err)
			}
		}
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case l := <-seen:
		t.Fatalf("the parent saw its child stopped (%q)", l)
	default:
	}
}
