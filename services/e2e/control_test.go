package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRestartKeepsIDAndStartsANewRun(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			name := "restart-" + h.name
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo run; exec sleep 300"))
			first := inspect(t, h.host, name)["State"].(map[string]any)["StartedAt"].(string)
			mustDocker(t, h.host, "restart", "-t", "1", name)
			in := inspect(t, h.host, name)
			st := in["State"].(map[string]any)
			if in["Id"] != id || st["Running"] != true || st["StartedAt"] == first || in["RestartCount"] != float64(0) {
				t.Fatalf("after restart: Id %v Running %v StartedAt %v (was %s) RestartCount %v", in["Id"], st["Running"], st["StartedAt"], first, in["RestartCount"])
			}
			waitFor(t, func() bool { return docker(t, h.host, "logs", name).stdout == "run\nrun\n" })
			mustDocker(t, h.host, "rm", "-f", name)
		})
	}
}

// docker restart of an --rm container starts it again, as docker's does
// (its stop does not remove it); a docker stop after removes it.
func TestRestartOfAnRmContainer(t *testing.T) {
	s := requireStack(t)
	hosts := append(referenceHosts(t, s), struct{ name, host string }{"firestore", firestoreStack(t).direct})
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "--rm", "busybox", "sleep", "300"))
			defer docker(t, h.host, "rm", "-f", id)
			mustDocker(t, h.host, "restart", "-t", "1", id)
			if st := inspect(t, h.host, id)["State"].(map[string]any); st["Running"] != true {
				t.Fatalf("after restart: %v", st)
			}
			mustDocker(t, h.host, "stop", "-t", "1", id)
			waitFor(t, func() bool { return docker(t, h.host, "inspect", id).code != 0 })
		})
	}
}

func TestRestartPolicyOnFailureCountsRestarts(t *testing.T) {
	s := requireStack(t)
	name := "policy"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "sh", "-c", "echo try; exit 3")
	waitFor(t, func() bool {
		in := inspect(t, s.direct, name)
		return in["RestartCount"] == float64(2) && in["State"].(map[string]any)["Status"] == "exited"
	})
	if out := mustDocker(t, s.direct, "logs", name); out != "try\ntry\ntry\n" {
		t.Fatalf("logs = %q, want three runs", out)
	}
	if code := strings.TrimSpace(mustDocker(t, s.direct, "wait", name)); code != "3" {
		t.Fatalf("wait = %s", code)
	}
	mustDocker(t, s.direct, "rm", name)
}

// docker pause freezes the whole container: a counter printed by the main
// process or by a process it started stops advancing, and goes on after
// unpause.
func TestPauseFreezesTheContainer(t *testing.T) {
	s := requireStack(t)
	const loop = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
	tests := []struct {
		name, script string
	}{
		{"main process", loop},
		{"child of the main process", "sh -c '" + loop + "' & wait"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "pauser-" + strconv.Itoa(i)
			mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sh", "-c", tt.script)
			defer mustDocker(t, s.direct, "rm", "-f", name)
			last := func() int {
				f := strings.Fields(docker(t, s.direct, "logs", "--tail", "1", name).stdout)
				if len(f) == 0 {
					return 0
				}
				n, _ := strconv.Atoi(f[0])
				return n
			}
			waitFor(t, func() bool { return last() > 3 })
			mustDocker(t, s.direct, "pause", name)
			if st := inspect(t, s.direct, name)["State"].(map[string]any); st["Paused"] != true || st["Status"] != "paused" {
				t.Fatalf("state after pause: %v", st)
			}
			time.Sleep(300 * time.Millisecond)
			n := last()
			time.Sleep(time.Second)
			if m := last(); m != n {
				t.Fatalf("counter went from %d to %d while paused", n, m)
			}
			mustDocker(t, s.direct, "unpause", name)
			waitFor(t, func() bool { return last() > n+3 })
		})
	}
}

func TestRenameAndEvents(t *testing.T) {
	s := requireStack(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	mustDocker(t, s.direct, "run", "-d", "--name", "before", "-l", "ev=1", "busybox", "sleep", "300")
	mustDocker(t, s.direct, "rename", "before", "after")
	if r := docker(t, s.direct, "inspect", "before"); r.code == 0 {
		t.Fatal("old name still resolves")
	}
	mustDocker(t, s.direct, "kill", "after")
	mustDocker(t, s.direct, "rm", "after")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "events", "--since", since, "--until", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		"--filter", "label=ev=1", "--format", "{{json .}}")
	cmd.Env = append(cmd.Environ(), "DOCKER_HOST="+s.fwd, "DOCKER_CONFIG="+dockerConfigDir(t))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker events: %v", err)
	}
	var actions []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var m struct{ Action string }
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			actions = append(actions, m.Action)
		}
	}
	want := []string{"create", "start", "rename", "kill", "die", "destroy"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("events = %v, want %v", actions, want)
	}
}

func TestHealthCheckRunsInTheContainer(t *testing.T) {
	s := requireStack(t)
	name := "healthy"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "--health-cmd", "test -f /tmp/ok && echo fine", "--health-interval", "300ms", "--health-retries", "2",
		"busybox", "sh", "-c", "sleep 1; touch /tmp/ok; sleep 3; rm /tmp/ok; sleep 300")
	defer docker(t, s.direct, "rm", "-f", name)
	health := func() map[string]any {
		st := inspect(t, s.direct, name)["State"].(map[string]any)
		h, _ := st["Health"].(map[string]any)
		return h
	}
	waitFor(t, func() bool { h := health(); return h != nil && h["Status"] == "healthy" })
	if ps := mustDocker(t, s.fwd, "ps", "--filter", "name=^"+name+"$", "--format", "{{.Status}}"); !strings.Contains(ps, "(healthy)") {
		t.Fatalf("ps status %q, want (healthy)", ps)
	}
	h := health()
	log := h["Log"].([]any)
	last := log[len(log)-1].(map[string]any)
	if last["ExitCode"] != float64(0) || last["Output"] != "fine\n" {
		t.Fatalf("last health result %v", last)
	}
	waitFor(t, func() bool { h := health(); return h["Status"] == "unhealthy" && h["FailingStreak"].(float64) >= 2 })
	if ids := strings.TrimSpace(mustDocker(t, s.direct, "inspect", "--format", "{{len .ExecIDs}}", name)); ids != "0" {
		t.Fatalf("health probes listed as execs: %s", ids)
	}
}

func TestTopAndStatsComeFromTheInstance(t *testing.T) {
	s := requireStack(t)
	name := "topstats"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sh", "-c", "while true; do :; done & exec sleep 300")
	defer docker(t, s.direct, "rm", "-f", name)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			top := mustDocker(t, h.host, "top", name)
			if !strings.Contains(top, "sleep 300") || !strings.Contains(top, "PID") || strings.Contains(top, "/.sockerless/agent") {
				t.Fatalf("docker top = %q", top)
			}
			// A busy loop shows real CPU use (an idle container shows 0%);
			// on a loaded machine it gets less of a core, so samples are
			// taken until one shows it, a minute at most.
			var out string
			var f []string
			for deadline := time.Now().Add(time.Minute); ; {
				out = mustDocker(t, h.host, "stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", name)
				f = strings.Fields(out)
				if len(f) < 3 {
					t.Fatalf("stats = %q", out)
				}
				cpu, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
				if err == nil && cpu >= 20 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("CPU %q: a busy loop should show real CPU use", f[0])
				}
			}
			if f[1] == "0B" || f[len(f)-1] == "0" {
				t.Fatalf("memory/pids not measured: %q", out)
			}
		})
	}
	// ps arguments other than ps -ef's are refused, not ignored.
	psName := fmt.Sprintf("top-args-%d", time.Now().UnixNano())
	mustDocker(t, s.direct, "run", "-d", "--name", psName, "busybox", "sleep", "60")
	defer docker(t, s.direct, "rm", "-f", psName)
	if out := mustDocker(t, s.direct, "top", psName, "-ef"); !strings.Contains(out, "sleep 60") {
		t.Fatalf("top -ef: %q", out)
	}
	if r := docker(t, s.direct, "top", psName, "aux"); r.code == 0 || !strings.Contains(r.stderr, `ps arguments "aux" are not supported`) {
		t.Fatalf("top aux: %d %q", r.code, r.stderr)
	}
	r := docker(t, s.direct, "top", "nope-top")
	if r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Fatalf("top of an unknown container: %d %q", r.code, r.stderr)
	}
}

// A container that exits at once still reports start before die, as docker
// does (the exit races the start's bookkeeping).
func TestEventOrderOfAnInstantExit(t *testing.T) {
	s := requireStack(t)
	label := fmt.Sprintf("instant=%d", time.Now().UnixNano())
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	var ids []string
	for range 5 {
		ids = append(ids, strings.TrimSpace(mustDocker(t, s.direct, "run", "-d", "-l", label, "busybox", "true")))
	}
	for _, id := range ids {
		mustDocker(t, s.direct, "wait", id)
		mustDocker(t, s.direct, "rm", id)
	}
	out := mustDocker(t, s.direct, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "label="+label, "--format", "{{.Actor.ID}} {{.Action}}")
	got := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			got[f[0]] = append(got[f[0]], f[1])
		}
	}
	for _, id := range ids {
		if a := strings.Join(got[id], " "); a != "create start die destroy" {
			t.Errorf("events of %s: %q, want create start die destroy", id[:12], a)
		}
	}
}
