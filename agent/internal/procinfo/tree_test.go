package procinfo

import (
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
