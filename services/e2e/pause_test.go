package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// uptime reads the host's /proc/uptime: the clock the container's processes
// read too (neither runc nor the function instance has a time namespace).
func uptime(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pauseHosts are the hosts the pause tests run on: directly, through the
// forwarder and, where one answers, on the Docker engine (the same
// expectations hold there).
func pauseHosts(t *testing.T, s *stack) []struct{ name, host string } {
	hosts := s.hosts()
	if ref, ok := reference(t); ok {
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	return hosts
}

// docker pause freezes processes started by docker exec and their children
// as well: the uptime stamps a child of an exec writes show a gap over the
// pause, and go on after unpause.
func TestPauseFreezesExecs(t *testing.T) {
	s := requireStack(t)
	for _, h := range pauseHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "busybox", "sleep", "300"))
			defer mustDocker(t, h.host, "rm", "-f", id)
			mustDocker(t, h.host, "exec", "-d", id, "sh", "-c",
				"sh -c 'while true; do cut -d\" \" -f1 /proc/uptime >> /tmp/c; sleep 0.1; done' & sleep 300")
			stamps := func() []float64 {
				var out []float64
				for _, l := range strings.Fields(docker(t, h.host, "exec", id, "cat", "/tmp/c").stdout) {
					if f, err := strconv.ParseFloat(l, 64); err == nil {
						out = append(out, f)
					}
				}
				return out
			}
			waitFor(t, func() bool { return len(stamps()) > 3 })

			mustDocker(t, h.host, "pause", id)
			paused := uptime(t)
			if r := docker(t, h.host, "exec", id, "true"); r.code == 0 || !strings.Contains(r.stderr, "is paused") {
				t.Errorf("exec in a paused container: exit %d, %q", r.code, r.stderr)
			}
			time.Sleep(1500 * time.Millisecond)
			unpausing := uptime(t)
			mustDocker(t, h.host, "unpause", id)

			waitFor(t, func() bool { st := stamps(); return st[len(st)-1] > unpausing+0.3 })
			// 0.3 s for the pause to reach every process (the control
			// plane answers once the agent has it), 0.05 s for rounding.
			for _, ts := range stamps() {
				if ts > paused+0.3 && ts < unpausing-0.05 {
					t.Fatalf("the exec's child wrote at %.2f, while paused (%.2f to %.2f)", ts, paused, unpausing)
				}
			}
		})
	}
}

// Signals to a paused or stopped container as docker handles them: kill -s
// STOP stops the main process only (its child goes on, the container stays
// running); kill with a signal while paused and stop while paused also
// unpause it, so the process acts on the signal at once.
func TestPauseAndSignals(t *testing.T) {
	s := requireStack(t)
	const loop = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
	tests := []struct {
		name   string
		script string
		act    func(t *testing.T, host, id string)
		status string // after act
		code   int    // exit code when status is exited
		logs   string // a line the logs must contain
		moving bool   // whether the counter advances after act
	}{
		{
			name:   "kill -s STOP stops the main process only",
			script: "(" + loop + ") & wait",
			act:    func(t *testing.T, host, id string) { mustDocker(t, host, "kill", "-s", "STOP", id) },
			status: "running", moving: true,
		},
		{
			name:   "kill while paused unpauses",
			script: "trap '' USR1; " + loop,
			act: func(t *testing.T, host, id string) {
				mustDocker(t, host, "pause", id)
				mustDocker(t, host, "kill", "-s", "USR1", id)
			},
			status: "running", moving: true,
		},
		{
			name:   "stop while paused delivers the stop signal at once",
			script: "trap 'echo term; exit 3' TERM; " + loop,
			act: func(t *testing.T, host, id string) {
				mustDocker(t, host, "pause", id)
				start := time.Now()
				mustDocker(t, host, "stop", "-t", "20", id)
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("stop of a paused container took %s: the process did not get TERM until the grace period ended", d)
				}
			},
			status: "exited", code: 3, logs: "term",
		},
	}
	for _, h := range pauseHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "busybox", "sh", "-c", tt.script))
					defer mustDocker(t, h.host, "rm", "-f", id)
					last := func() int {
						f := strings.Fields(docker(t, h.host, "logs", "--tail", "1", id).stdout)
						if len(f) == 0 {
							return 0
						}
						n, _ := strconv.Atoi(f[0])
						return n
					}
					waitFor(t, func() bool { return last() > 3 })
					tt.act(t, h.host, id)
					st := inspect(t, h.host, id)["State"].(map[string]any)
					if st["Status"] != tt.status || (tt.status == "exited" && st["ExitCode"] != float64(tt.code)) {
						t.Fatalf("state %v, want %s (exit code %d)", st, tt.status, tt.code)
					}
					if logs := docker(t, h.host, "logs", id).stdout; !strings.Contains(logs, tt.logs) {
						t.Errorf("logs %q lack %q", logs, tt.logs)
					}
					if tt.status != "running" {
						return
					}
					n := last()
					time.Sleep(time.Second)
					if moved := last() > n; moved != tt.moving {
						t.Errorf("counter advancing = %v, want %v", moved, tt.moving)
					}
				})
			}
		})
	}
}
