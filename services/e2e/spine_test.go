package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sockerless/sockerless/agent/proto"
)

// Two containers of one image make exactly one function, and each runs
// on its own instance.
func TestOneFunctionPerImageIsReused(t *testing.T) {
	s := requireStack(t)
	mustDocker(t, s.direct, "pull", "reuse")
	before := s.simStats(t)
	for i := 0; i < 2; i++ {
		if out := mustDocker(t, s.direct, "run", "--rm", "reuse", "cat", "/reuse"); out != "reuse\n" {
			t.Fatalf("run %d printed %q", i, out)
		}
	}
	id := strings.TrimSpace(mustDocker(t, s.fwd, "create", "reuse", "true"))
	after := s.simStats(t)
	if d := after["createFunction"] - before["createFunction"]; d != 1 {
		t.Fatalf("CreateFunction calls = %v, want exactly 1 for two containers and a create of one image", d)
	}
	if d := after["instancesStarted"] - before["instancesStarted"]; d != 2 {
		t.Fatalf("instances started = %v, want 2 (one per container)", d)
	}
	mustDocker(t, s.direct, "rm", id)
}

// A dial with a wrong secret is refused and the live session goes on.
func TestWrongAgentSecretIsRefused(t *testing.T) {
	s := requireStack(t)
	id := strings.TrimSpace(mustDocker(t, s.direct, "run", "-d", "busybox", "sh", "-c", `trap "exit 9" TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done`))
	waitFor(t, func() bool { return strings.Contains(docker(t, s.direct, "logs", id).stdout, "3\n") })
	for _, secret := range []string{"wrong", ""} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h := http.Header{}
		h.Set(proto.HeaderContainer, "default/"+id)
		h.Set("Authorization", "Bearer "+secret)
		c, resp, err := websocket.Dial(ctx, "ws://"+s.tcp+proto.ConnectPath, &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if err == nil {
			c.CloseNow()
			t.Fatalf("dial with secret %q was accepted", secret)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial with secret %q: %v (response %v), want 401", secret, err, resp)
		}
	}
	count := func() int {
		lines := strings.Fields(docker(t, s.direct, "logs", "--tail", "1", id).stdout)
		if len(lines) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(lines[0])
		return n
	}
	n := count()
	waitFor(t, func() bool { return count() > n+3 })
	if st := inspect(t, s.direct, id)["State"].(map[string]any); st["Running"] != true {
		t.Fatalf("container state after refused dials: %v", st)
	}
	mustDocker(t, s.direct, "stop", id)
	if code := strings.TrimSpace(mustDocker(t, s.direct, "wait", id)); code != "9" {
		t.Fatalf("stop after refused dials: exit %s, want 9 (the session still delivers signals)", code)
	}
	mustDocker(t, s.direct, "rm", id)
}

// A restarted control plane on the same state dir still has containers,
// exit codes and logs.
func TestControlPlaneRestartKeepsState(t *testing.T) {
	s := requireStack(t)
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	r := docker(t, s.direct, "run", "--name", "survivor", "busybox", "sh", "-c", "echo before-restart; echo to-stderr >&2; exit 5")
	if r.code != 5 {
		t.Fatalf("run: exit %d %s", r.code, r.stderr)
	}
	s.cp.stop()
	if err := s.startControlPlane(); err != nil {
		t.Fatal(err)
	}
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			ps := mustDocker(t, h.host, "ps", "-a", "--filter", "name=^survivor$", "--format", "{{.Names}} {{.Status}}")
			if !strings.HasPrefix(ps, "survivor Exited (5)") {
				t.Fatalf("ps -a after restart = %q", ps)
			}
			lr := docker(t, h.host, "logs", "survivor")
			if lr.stdout != "before-restart\n" || lr.stderr != "to-stderr\n" {
				t.Fatalf("logs after restart: stdout %q stderr %q", lr.stdout, lr.stderr)
			}
			if code := strings.TrimSpace(mustDocker(t, h.host, "wait", "survivor")); code != "5" {
				t.Fatalf("wait after restart = %s", code)
			}
			// Events of before the restart are kept too.
			evs := mustDocker(t, h.host, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
				"--filter", "container=survivor", "--format", "{{.Action}}")
			if got := strings.Fields(evs); strings.Join(got, " ") != "create attach start die" {
				t.Fatalf("events after restart: %q, want create attach start die", got)
			}
		})
	}
	// The restarted control plane runs new containers too.
	if out := mustDocker(t, s.fwd, "run", "--rm", "busybox", "echo", "after-restart"); out != "after-restart\n" {
		t.Fatalf("run after restart printed %q", out)
	}
	mustDocker(t, s.direct, "rm", "survivor")
}
