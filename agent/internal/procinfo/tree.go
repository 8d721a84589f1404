package procinfo

import (
	"errors"
	"fmt"
	"syscall"
)

// Descendants returns the pids of every process under root ("/proc") that
// descends from pid of: the container's processes, execs included, seen
// from the agent.
func Descendants(root string, of int) ([]int, error) {
	ps, err := list(root, of)
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, p := range ps {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []int
	queue := []int{of}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// freezeRounds bounds the scans SignalTree makes: a process may fork
// between a scan and its signal.
const freezeRounds = 5

// SignalTree sends sig to every descendant of pid of, scanning again until
// a scan finds none it has not signalled (a child forked meanwhile is
// caught by the next scan; once all are stopped, none can fork). It is how
// pause freezes the whole container, as docker's cgroup freezer does, and
// how unpause thaws it.
func SignalTree(root string, of int, sig syscall.Signal) (int, error) {
	done := map[int]bool{}
	for range freezeRounds {
		pids, err := Descendants(root, of)
		if err != nil {
			return len(done), err
		}
		fresh := 0
		for _, pid := range pids {
			if done[pid] {
				continue
			}
			done[pid] = true
			fresh++
			if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
				return len(done), fmt.Errorf("signal %d to pid %d: %w", sig, pid, err)
			}
		}
		if fresh == 0 {
			break
		}
	}
	return len(done), nil
}
