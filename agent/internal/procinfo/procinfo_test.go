package procinfo

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

func TestTopListsProcessesButTheSkippedOne(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	top, err := Top("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range top.Processes {
		if p[1] == strconv.Itoa(os.Getpid()) {
			t.Fatal("the skipped pid is listed")
		}
		if p[1] == strconv.Itoa(cmd.Process.Pid) {
			found = p[7] == "sleep 30" && p[2] == strconv.Itoa(os.Getpid())
		}
	}
	if !found || len(top.Titles) != 8 {
		t.Fatalf("sleep 30 (child of this test) not listed right: %v", top)
	}
}

func TestStatsCountsCPUAndMemory(t *testing.T) {
	s, err := Stats("/proc", 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids == 0 || s.MemoryUsage == 0 || s.SystemCPU == 0 || s.MemoryLimit == 0 || s.OnlineCPUs == 0 {
		t.Fatalf("stats %+v", s)
	}
}
