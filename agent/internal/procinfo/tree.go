package procinfo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Descendants returns the pids of every process under root ("/proc") that
// descends from pid of: the container's processes, execs included, seen
// from the agent. Parents come before their children.
func Descendants(root string, of int) ([]int, error) {
	levels, err := generations(root, of)
	if err != nil {
		return nil, err
	}
	return slices.Concat(levels...), nil
}

// generations returns the descendants of of by generation: its children,
// then their children, and so on.
func generations(root string, of int) ([][]int, error) {
	ps, err := list(root, of)
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range ps {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var levels [][]int
	for level := children[of]; len(level) > 0; {
		levels = append(levels, level)
		var next []int
		for _, pid := range level {
			next = append(next, children[pid]...)
		}
		level = next
	}
	return levels, nil
}

// freezeRounds bounds the scans SignalTree makes: a process may fork
// between a scan and its signal.
const freezeRounds = 5

// stopWait bounds how long SignalTree waits for one generation to stop (a
// process in uninterruptible sleep stops only when it leaves it).
const stopWait = time.Second

// SignalTree sends sig to every descendant of pid of, scanning again until
// a scan finds none it has not signalled (a child forked meanwhile is
// caught by the next scan; once all are stopped, none can fork). It is how
// pause freezes the whole container, as docker's cgroup freezer does, and
// how unpause thaws it. It returns how many processes it signalled.
//
// SIGSTOP goes to one generation at a time, parents first, each stopped
// (every thread, up to stopWait) before their children get it; SIGCONT goes
// to children before their parents. A parent waiting with WUNTRACED (a
// shell with job control) thus never sees a child stopped: an interactive
// shell would otherwise report the job stopped and take the terminal back.
func SignalTree(root string, of int, sig syscall.Signal) (int, error) {
	done := map[int]bool{}
	for range freezeRounds {
		levels, err := generations(root, of)
		if err != nil {
			return len(done), fmt.Errorf("list the processes under %d: %w", of, err)
		}
		if sig == syscall.SIGCONT {
			levels = [][]int{slices.Concat(levels...)}
			slices.Reverse(levels[0])
		}
		fresh := 0
		for _, level := range levels {
			var sent []int
			for _, pid := range level {
				if done[pid] {
					continue
				}
				done[pid] = true
				fresh++
				if err := syscall.Kill(pid, sig); err != nil {
					if errors.Is(err, syscall.ESRCH) {
						continue
					}
					return len(done), fmt.Errorf("signal %d to pid %d: %w", sig, pid, err)
				}
				sent = append(sent, pid)
			}
			if sig == syscall.SIGSTOP {
				waitStopped(root, sent, time.Now().Add(stopWait))
			}
		}
		if fresh == 0 {
			break
		}
	}
	return len(done), nil
}

// waitStopped waits until every thread of every process in pids is stopped
// (or gone), or until deadline.
func waitStopped(root string, pids []int, deadline time.Time) {
	pause := 100 * time.Microsecond
	for _, pid := range pids {
		for !stopped(root, pid) && time.Now().Before(deadline) {
			time.Sleep(pause)
			pause = min(2*pause, 10*time.Millisecond)
		}
	}
}

// stopped reports whether every thread of pid is stopped, or pid is gone or
// a zombie.
func stopped(root string, pid int) bool {
	dir := filepath.Join(root, strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true // gone
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread ended
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "T", "t", "Z", "X":
		default:
			return false
		}
	}
	return true
}
