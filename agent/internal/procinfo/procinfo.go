// Package procinfo reads the container's processes from /proc for docker
// top and docker stats. The agent runs as PID 1 of the function instance,
// so every other process in /proc belongs to the container.
package procinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

type proc struct {
	pid, ppid  int
	uid        string
	utime      uint64 // ticks
	stime      uint64
	start      uint64 // ticks after boot
	rss        uint64 // pages
	tty        int
	comm, args string
}

// list reads every process under root ("/proc") except skip.
func list(root string, skip int) ([]proc, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", root, err)
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == skip {
			continue
		}
		p, err := read(filepath.Join(root, e.Name()), pid)
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out, nil
}

// containerProcs lists the container's processes: all but the agent's
// own. Those (agent pid skip, and its mount helper, which stays while host
// binds may still be mounted) run the agent's command line, which no
// process of the container runs. (The command line, not the executable's
// link: the helper keeps capabilities the agent dropped, so the kernel
// hides its exe link from the agent.)
func containerProcs(root string, skip int) ([]proc, error) {
	ps, err := list(root, skip)
	if err != nil {
		return nil, err
	}
	self, err := read(filepath.Join(root, strconv.Itoa(skip)), skip)
	if err != nil || self.args == "" {
		return ps, nil
	}
	out := ps[:0]
	for _, p := range ps {
		if p.args != self.args {
			out = append(out, p)
		}
	}
	return out, nil
}

func read(dir string, pid int) (proc, error) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return proc{}, err
	}
	// pid (comm) state ppid pgrp session tty_nr ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24)
	open, close := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || close < open {
		return proc{}, fmt.Errorf("bad stat of %d", pid)
	}
	p := proc{pid: pid, comm: string(stat[open+1 : close])}
	f := strings.Fields(string(stat[close+1:]))
	if len(f) < 22 {
		return proc{}, fmt.Errorf("short stat of %d", pid)
	}
	num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
	p.ppid = int(num(1))
	p.tty = int(num(4))
	p.utime, p.stime, p.start, p.rss = num(11), num(12), num(19), num(21)
	if cmd, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmd) > 0 {
		p.args = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
	} else {
		p.args = "[" + p.comm + "]"
	}
	if st, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(st))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					p.uid = fs[0]
				}
			}
		}
	}
	return p, nil
}

// Top lists the processes like `ps -ef` (docker top's default).
func Top(root string, skip int) (proto.Top, error) {
	ps, err := containerProcs(root, skip)
	if err != nil {
		return proto.Top{}, err
	}
	t := proto.Top{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, Processes: [][]string{}}
	for _, p := range ps {
		cpu := (p.utime + p.stime) / clockTicks
		tty := "?"
		if p.tty != 0 {
			tty = fmt.Sprintf("pts/%d", p.tty&0xff)
		}
		t.Processes = append(t.Processes, []string{
			p.uid, strconv.Itoa(p.pid), strconv.Itoa(p.ppid), "0", "-", tty,
			fmt.Sprintf("%02d:%02d:%02d", cpu/3600, cpu/60%60, cpu%60), p.args,
		})
	}
	return t, nil
}

// Stats samples the processes' CPU time and memory and the host's CPU time.
func Stats(root string, skip int) (proto.Stats, error) {
	ps, err := containerProcs(root, skip)
	if err != nil {
		return proto.Stats{}, err
	}
	s := proto.Stats{Time: time.Now().UTC(), OnlineCPUs: uint32(runtime.NumCPU()), Pids: uint64(len(ps))}
	page := uint64(os.Getpagesize())
	for _, p := range ps {
		s.CPUTotal += (p.utime + p.stime) * (1e9 / clockTicks)
		s.MemoryUsage += p.rss * page
	}
	if b, err := os.ReadFile(filepath.Join(root, "stat")); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if fs := strings.Fields(line); len(fs) > 1 && fs[0] == "cpu" {
			var total uint64
			for _, v := range fs[1:] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
			s.SystemCPU = total * (1e9 / clockTicks)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "net", "dev")); err == nil {
		s.Network = netDev(b)
	}
	if b, err := os.ReadFile(filepath.Join(root, "meminfo")); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				if fs := strings.Fields(rest); len(fs) > 0 {
					kb, _ := strconv.ParseUint(fs[0], 10, 64)
					s.MemoryLimit = kb * 1024
				}
			}
		}
	}
	return s, nil
}

// netDev sums /proc/net/dev over every interface but loopback.
func netDev(b []byte) proto.NetStats {
	var n proto.NetStats
	for _, line := range strings.Split(string(b), "\n") {
		iface, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(iface) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		v := func(i int) uint64 { x, _ := strconv.ParseUint(f[i], 10, 64); return x }
		n.RxBytes += v(0)
		n.RxPackets += v(1)
		n.RxErrors += v(2)
		n.RxDropped += v(3)
		n.TxBytes += v(8)
		n.TxPackets += v(9)
		n.TxErrors += v(10)
		n.TxDropped += v(11)
	}
	return n
}
