package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryCgroup makes a child of this process's memory cgroup limited to
// limit bytes (cgroup v2 memory.max, or v1 memory.limit_in_bytes) and
// returns its directory, or "" with the reason it cannot here. It is
// removed when the test ends (after the stacks it holds are stopped, if
// registered before them).
func memoryCgroup(t *testing.T, limit int64) (string, string) {
	t.Helper()
	own := func(match func(string) bool) string {
		b, _ := os.ReadFile("/proc/self/cgroup")
		for _, l := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(l, ":", 3)
			if len(parts) == 3 && match(parts[1]) {
				return parts[2]
			}
		}
		return ""
	}
	var dir, limitFile string
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil { // v2
		parent := filepath.Join("/sys/fs/cgroup", own(func(c string) bool { return c == "" }))
		ctl, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
		if !strings.Contains(string(ctl), "memory") {
			return "", "cgroup v2 without the memory controller enabled for children of " + parent
		}
		dir, limitFile = filepath.Join(parent, fmt.Sprintf("sockerless-e2e-%d", os.Getpid())), "memory.max"
	} else if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil { // v1
		parent := filepath.Join("/sys/fs/cgroup/memory", own(func(c string) bool { return c == "memory" }))
		dir, limitFile = filepath.Join(parent, fmt.Sprintf("sockerless-e2e-%d", os.Getpid())), "memory.limit_in_bytes"
	} else {
		return "", "no memory cgroup hierarchy"
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Sprintf("create cgroup: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		return "", fmt.Sprintf("set %s: %v", limitFile, err)
	}
	return dir, ""
}

// procStatus reads one kB field of /proc/PID/status, in bytes.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// A file larger than the control plane's memory goes through docker cp
// both ways, byte-exact: the control plane runs with GOMEMLIMIT and in a
// memory cgroup whose hard limit is below the file's size (where the
// machine allows one), and its peak anonymous RSS stays well below the
// file's size.
func TestCopyLargerThanControlPlaneMemory(t *testing.T) {
	requireStack(t)
	const (
		fileSize = 256 << 20
		limit    = 160 << 20 // the cgroup's hard limit
		maxPeak  = 96 << 20  // the control plane's peak anonymous RSS must stay below
	)
	cg, why := memoryCgroup(t, limit)
	s := otherStack(t, nil, []string{"GOMEMLIMIT=64MiB"})
	pid := s.cp.cmd.Process.Pid
	if cg != "" {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatalf("move control plane into %s: %v", cg, err)
		}
		t.Logf("control plane in cgroup %s limited to %d MiB, GOMEMLIMIT=64MiB", cg, limit>>20)
	} else {
		t.Logf("no memory cgroup (%s): checking the control plane's peak RSS only", why)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "big")
	writeRandomFile(t, src, fileSize)
	want := sha256File(t, src)

	name := "cp-big"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sleep", "600")
	defer docker(t, s.direct, "rm", "-f", name)
	base := procStatus(t, pid, "RssAnon")
	// VmHWM counts the store's memory-mapped file pages too (page cache the
	// kernel reclaims under the cgroup's limit), so the process's own
	// memory, RssAnon, is sampled for its peak.
	stop := make(chan struct{})
	peakc := make(chan int64)
	go func() {
		var peak int64
		for {
			peak = max(peak, procStatus(t, pid, "RssAnon"))
			select {
			case <-stop:
				peakc <- peak
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	mustDocker(t, s.direct, "cp", src, name+":/tmp/big")
	if out := mustDocker(t, s.direct, "exec", name, "sha256sum", "/tmp/big"); !strings.HasPrefix(out, want) {
		t.Fatalf("in the container: %q, want %s", out, want)
	}
	back := filepath.Join(dir, "back")
	mustDocker(t, s.direct, "cp", name+":/tmp/big", back)
	if got := sha256File(t, back); got != want {
		t.Fatalf("copied back: sha256 %s, want %s", got, want)
	}
	close(stop)
	peak := <-peakc
	t.Logf("control plane anonymous RSS before %d MiB, peak %d MiB (VmHWM with mapped store pages %d MiB), for a %d MiB file each way",
		base>>20, peak>>20, procStatus(t, pid, "VmHWM")>>20, fileSize>>20)
	if peak >= maxPeak {
		t.Fatalf("control plane peak anonymous RSS %d MiB ≥ %d MiB: it holds the archive in memory", peak>>20, maxPeak>>20)
	}
	select {
	case <-s.cp.done:
		t.Fatal("control plane died (out of memory?)")
	default:
	}
}
