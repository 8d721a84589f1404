package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// counter is a shell loop appending a timestamp to file every 50 ms.
func counter(file string) string {
	return "while true; do date +%s%N >> " + file + "; sleep 0.05; done"
}

// procState is the state letter of /proc/PID/stat ('T' when stopped),
// or 0 if the process is gone.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2]
	}
	return 0
}

// childShell finds the child of pid running a shell whose command line
// mentions file.
func childShell(t *testing.T, pid int, file string) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			cpid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cpid))
			cmd, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cpid))
			if err != nil || err2 != nil {
				continue
			}
			s := string(stat)
			i := strings.LastIndexByte(s, ')')
			f := strings.Fields(s[i+2:])
			if len(f) > 1 && f[1] == strconv.Itoa(pid) && strings.Contains(string(cmd), file) {
				return cpid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no child of %d runs the counter of %s", pid, filepath.Base(file))
	return 0
}

// fileSize is file's size (0 if missing).
func fileSize(file string) int64 {
	fi, err := os.Stat(file)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitStopped waits until the counter process pid is stopped and its file
// no longer grows (a date it had already started may append once more).
func waitStopped(t *testing.T, pid int, file string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for procState(pid) != 'T' {
		if time.Now().After(deadline) {
			t.Errorf("%s's counter (pid %d) never stopped: state %q", filepath.Base(file), pid, procState(pid))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for last := fileSize(file); ; {
		time.Sleep(300 * time.Millisecond)
		now := fileSize(file)
		if now == last {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still grows though its counter is stopped", filepath.Base(file))
			return
		}
		last = now
	}
}

// waitAdvancing waits until the counter process pid runs and its file
// grows.
func waitAdvancing(t *testing.T, pid int, file string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	before := fileSize(file)
	for procState(pid) == 'T' || fileSize(file) <= before {
		if time.Now().After(deadline) {
			t.Errorf("%s's counter (pid %d) does not advance: state %q", filepath.Base(file), pid, procState(pid))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A signal with All (docker pause, unpause) reaches every process of the
// container: the main process, an exec and the exec's child; a signal
// without it (docker kill -s STOP) only the main process, as docker. The
// kernel's process state says which are stopped, so a slow machine only
// makes the test wait longer.
func TestSignalAllFreezesEveryProcess(t *testing.T) {
	dir := t.TempDir()
	main, execd, child := filepath.Join(dir, "main"), filepath.Join(dir, "exec"), filepath.Join(dir, "child")
	c := runContainer(t, sh(counter(main)), 0, nil)
	mainPid := c.h.startedRun(t, 1).Pid
	c.exec(t, "loops", sh("sh -c '"+counter(child)+"' & "+counter(execd)))
	execPid := c.h.startedExec(t, "loops").Pid
	childPid := childShell(t, execPid, child)
	files := []string{main, execd, child}
	pids := []int{mainPid, execPid, childPid}
	for i := range files {
		waitAdvancing(t, pids[i], files[i])
	}

	tests := []struct {
		name string
		sig  proto.Signal
		want []bool // whether main, exec and child advance afterwards
	}{
		{"kill -s STOP stops the main process only", proto.Signal{Signal: int(syscall.SIGSTOP)}, []bool{false, true, true}},
		{"kill -s CONT continues it", proto.Signal{Signal: int(syscall.SIGCONT)}, []bool{true, true, true}},
		{"pause stops every process", proto.Signal{Signal: int(syscall.SIGSTOP), All: true}, []bool{false, false, false}},
		{"unpause continues every process", proto.Signal{Signal: int(syscall.SIGCONT), All: true}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.h.send(t, proto.TypeSignal, tt.sig)
			for i, f := range files {
				if tt.want[i] {
					waitAdvancing(t, pids[i], f)
				} else {
					waitStopped(t, pids[i], f)
				}
			}
			// What must go on still does once the rest has stopped.
			for i, f := range files {
				if tt.want[i] {
					waitAdvancing(t, pids[i], f)
				} else if st := procState(pids[i]); st != 'T' {
					t.Errorf("%s's counter is no longer stopped: state %q", filepath.Base(f), st)
				}
			}
		})
	}
}
