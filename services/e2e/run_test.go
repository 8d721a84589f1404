package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVersionAndInfo(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			v := strings.TrimSpace(mustDocker(t, h.host, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}"))
			if v != "1.50 1.24 linux" {
				t.Fatalf("server versions = %q, want %q", v, "1.50 1.24 linux")
			}
			info := strings.TrimSpace(mustDocker(t, h.host, "info", "--format", "{{.OperatingSystem}}|{{.OSType}}"))
			if !strings.Contains(info, "Sockerless") || !strings.HasSuffix(info, "|linux") {
				t.Fatalf("info = %q", info)
			}
		})
	}
}

func TestPullImagesInspect(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			out := mustDocker(t, h.host, "pull", "busybox")
			if !strings.Contains(out, "busybox:latest") {
				t.Fatalf("pull output %q does not name busybox:latest", out)
			}
			imgs := mustDocker(t, h.host, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
			if !strings.Contains(imgs, "busybox:latest ") {
				t.Fatalf("docker images = %q, want busybox:latest", imgs)
			}
			cmd := strings.TrimSpace(mustDocker(t, h.host, "image", "inspect", "busybox", "--format", "{{json .Config.Cmd}} {{.Os}}/{{.Architecture}}"))
			if cmd != `["sh"] linux/amd64` {
				t.Fatalf("image inspect = %q", cmd)
			}
			r := docker(t, h.host, "pull", "no-such-image-here")
			if r.code == 0 || !strings.Contains(r.stderr, "pull access denied for no-such-image-here") {
				t.Fatalf("pull of a missing image: exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
}

func TestRunRemoveEchoes(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			name := "rm-" + h.name
			r := docker(t, h.host, "run", "--rm", "--name", name, "busybox", "echo", "hello")
			if r.code != 0 || r.stdout != "hello\n" {
				t.Fatalf("run --rm: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			waitGone(t, h.host, name)
		})
	}
}

// waitGone checks that --rm removed the container (the daemon removes it
// right after the exit; the CLI has already waited for that).
func waitGone(t *testing.T, host, name string) {
	t.Helper()
	r := docker(t, host, "container", "inspect", name)
	if r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Fatalf("container %s still there after --rm: exit %d %s", name, r.code, r.stderr)
	}
}

func TestRunKeepsStreamsApartAndExitCode(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			r := docker(t, h.host, "run", "--name", "streams-"+h.name, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
			if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
				t.Fatalf("exit %d stdout %q stderr %q, want 3 %q %q", r.code, r.stdout, r.stderr, "out\n", "err\n")
			}
			if got := inspect(t, h.host, "streams-"+h.name)["State"].(map[string]any)["ExitCode"]; got != float64(3) {
				t.Fatalf("inspect ExitCode = %v", got)
			}
			mustDocker(t, h.host, "rm", "streams-"+h.name)
		})
	}
}

func TestDetachedContainerPsInspectLogs(t *testing.T) {
	s := requireStack(t)
	hosts := s.hosts()
	if ref, ok := reference(t); ok { // the same expectations hold for docker
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			web := "web-" + h.name
			id := strings.TrimSpace(mustDocker(t, h.host, "run", "-d", "--name", web, "-e", "A=1", "-w", "/tmp", "-l", "team=x"+h.name, "busybox", "sleep", "300"))
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
				t.Fatalf("run -d printed %q, want a 64-hex ID", id)
			}
			other := "other-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", other, "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.3; echo oops >&2; sleep 300")
			ps := mustDocker(t, h.host, "ps", "--format", "{{.Names}} {{.Status}}")
			if !regexp.MustCompile(`(?m)^` + web + ` Up `).MatchString(ps) {
				t.Fatalf("docker ps = %q, want %s Up …", ps, web)
			}
			filtered := strings.Fields(mustDocker(t, h.host, "ps", "-a", "--filter", "label=team=x"+h.name, "--format", "{{.Names}}"))
			if len(filtered) != 1 || filtered[0] != web {
				t.Fatalf("ps --filter label = %v, want [%s]", filtered, web)
			}
			in := inspect(t, h.host, web)
			st := in["State"].(map[string]any)
			cfg := in["Config"].(map[string]any)
			if in["Id"] != id || in["Name"] != "/"+web || st["Running"] != true || st["Status"] != "running" {
				t.Fatalf("inspect Id/Name/State = %v %v %v", in["Id"], in["Name"], st)
			}
			if !strings.HasPrefix(in["Image"].(string), "sha256:") || cfg["Image"] != "busybox" || cfg["WorkingDir"] != "/tmp" {
				t.Fatalf("inspect Image %v Config.Image %v WorkingDir %v", in["Image"], cfg["Image"], cfg["WorkingDir"])
			}
			if env := fmt.Sprint(cfg["Env"]); !strings.Contains(env, "A=1") || !strings.Contains(env, "PATH=") {
				t.Fatalf("Config.Env = %v", env)
			}
			if _, err := time.Parse(time.RFC3339Nano, in["Created"].(string)); err != nil {
				t.Fatalf("Created %v: %v", in["Created"], err)
			}
			waitFor(t, func() bool { return docker(t, h.host, "logs", other).stderr == "oops\n" })
			r := docker(t, h.host, "logs", other)
			if r.stdout != "line1\nline2\nline3\nline4\nline5\n" || r.stderr != "oops\n" {
				t.Fatalf("logs stdout %q stderr %q", r.stdout, r.stderr)
			}
			// --tail counts lines of both streams, as docker does.
			if r := docker(t, h.host, "logs", "--tail", "2", other); r.stdout != "line5\n" || r.stderr != "oops\n" {
				t.Fatalf("logs --tail 2 = stdout %q stderr %q", r.stdout, r.stderr)
			}
			if r := docker(t, h.host, "logs", "--tail", "3", other); r.stdout != "line4\nline5\n" {
				t.Fatalf("logs --tail 3 stdout = %q", r.stdout)
			}
			ts := docker(t, h.host, "logs", "--timestamps", other).stdout
			for _, l := range strings.Split(strings.TrimSpace(ts), "\n") {
				f := strings.SplitN(l, " ", 2)
				if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil || len(f) != 2 || !strings.HasPrefix(f[1], "line") {
					t.Fatalf("logs --timestamps line %q", l)
				}
			}
			if out := mustDocker(t, h.host, "logs", "--tail", "0", web); out != "" {
				t.Fatalf("logs of a silent container = %q", out)
			}
			mustDocker(t, h.host, "rm", "-f", web, other)
		})
	}
}

func TestLogsFollowEndsWithContainer(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			name := "ticker-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3 4; do echo tick$i; sleep 0.3; done")
			start := time.Now()
			out := mustDocker(t, h.host, "logs", "-f", name)
			if out != "tick1\ntick2\ntick3\ntick4\n" {
				t.Fatalf("logs -f = %q", out)
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("logs -f took %s", time.Since(start))
			}
			if code := strings.TrimSpace(mustDocker(t, h.host, "wait", name)); code != "0" {
				t.Fatalf("wait = %s", code)
			}
			mustDocker(t, h.host, "rm", name)
		})
	}
}

func TestStopAndKillDeliverRealSignals(t *testing.T) {
	s := requireStack(t)
	cases := []struct {
		name   string
		script string
		action []string
		code   string
		logHas string
	}{
		{"handler's own code on TERM", `trap "echo got TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done`, []string{"stop"}, "7", "got TERM"},
		{"143 when TERM kills", `echo ready; exec sleep 300`, []string{"stop"}, "143", ""},
		{"137 when SIGKILL is needed", `trap "" TERM; echo ready; while true; do sleep 0.1; done`, []string{"stop", "-t", "1"}, "137", ""},
		{"kill -s USR1 delivers USR1", `trap "echo got USR1; exit 42" USR1; echo ready; while true; do sleep 0.1; done`, []string{"kill", "-s", "USR1"}, "42", "got USR1"},
	}
	for _, h := range s.hosts() {
		for i, tc := range cases {
			t.Run(h.name+"/"+tc.name, func(t *testing.T) {
				name := fmt.Sprintf("sig%d-%s", i, h.name)
				mustDocker(t, h.host, "run", "-d", "--name", name, "busybox", "sh", "-c", tc.script)
				waitFor(t, func() bool { return strings.Contains(docker(t, h.host, "logs", name).stdout, "ready") })
				mustDocker(t, h.host, append(append([]string{}, tc.action...), name)...)
				if code := strings.TrimSpace(mustDocker(t, h.host, "wait", name)); code != tc.code {
					t.Fatalf("exit code = %s, want %s", code, tc.code)
				}
				if tc.logHas != "" {
					waitFor(t, func() bool { return strings.Contains(docker(t, h.host, "logs", name).stdout, tc.logHas) })
				}
				mustDocker(t, h.host, "rm", name)
			})
		}
	}
}

func TestRemoveForceAndPrune(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			run := "live-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", run, "busybox", "sleep", "300")
			r := docker(t, h.host, "rm", run)
			// Docker 20.10's words, which docker-py's suite checks.
			if r.code == 0 || !strings.Contains(r.stderr, "You cannot remove a running container") {
				t.Fatalf("rm of a running container: exit %d %q", r.code, r.stderr)
			}
			mustDocker(t, h.host, "rm", "-f", run)
			waitGone(t, h.host, run)

			done := "done-" + h.name
			mustDocker(t, h.host, "run", "--name", done, "busybox", "true")
			keep := "keep-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", keep, "busybox", "sleep", "300")
			out := mustDocker(t, h.host, "container", "prune", "-f")
			id := strings.TrimSpace(mustDocker(t, h.host, "ps", "-aq", "--no-trunc", "--filter", "name=^"+keep+"$"))
			if id == "" {
				t.Fatalf("prune removed the running container %s", keep)
			}
			if !strings.Contains(out, "Deleted Containers") {
				t.Fatalf("prune output %q", out)
			}
			waitGone(t, h.host, done)
			mustDocker(t, h.host, "rm", "-f", keep)
		})
	}
}

func TestErrorsAsDockerGivesThem(t *testing.T) {
	s := requireStack(t)
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			r := docker(t, h.host, "rm", "nope-"+h.name)
			if r.code == 0 || !strings.Contains(r.stderr, "No such container: nope-"+h.name) {
				t.Fatalf("rm unknown: exit %d %q", r.code, r.stderr)
			}
			name := "dup-" + h.name
			mustDocker(t, h.host, "create", "--name", name, "busybox", "true")
			r = docker(t, h.host, "create", "--name", name, "busybox", "true")
			if r.code == 0 || !strings.Contains(r.stderr, `The container name "/`+name+`" is already in use`) {
				t.Fatalf("name conflict: exit %d %q", r.code, r.stderr)
			}
			mustDocker(t, h.host, "rm", name)
		})
	}
	cases := []struct {
		name, method, path, body string
		token                    bool
		status                   int
		message                  string
	}{
		{"unknown container is 404", "GET", "/v1.50/containers/nope/json", "", true, 404, "No such container: nope"},
		{"unknown image is 404", "POST", "/v1.50/containers/create", `{"Image":"nosuch"}`, true, 404, "No such image: nosuch:latest"},
		{"bad JSON is 400", "POST", "/v1.50/containers/create", `{"Image":`, true, 400, "invalid JSON"},
		{"name conflict is 409", "POST", "/containers/create?name=conflict-api", `{"Image":"busybox"}`, true, 409, `The container name "/conflict-api" is already in use`},
		{"no token is 401", "GET", "/v1.50/containers/json", "", false, 401, "token"},
		{"too new a version is 400", "GET", "/v9.99/version", "", true, 400, "client version 9.99 is too new"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status == 409 {
				s.apiRequest(t, "POST", "/containers/create?name=conflict-api", []byte(`{"Image":"busybox"}`), true)
			}
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			resp, b := s.apiRequest(t, tc.method, tc.path, body, tc.token)
			var msg struct{ Message string }
			if resp.StatusCode != tc.status || json.Unmarshal(b, &msg) != nil || !strings.Contains(msg.Message, tc.message) {
				t.Fatalf("%s %s = %d %s, want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.message)
			}
		})
	}
	mustDocker(t, s.direct, "rm", "-f", "conflict-api")
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLogsSinceUntilAndWaitConditions(t *testing.T) {
	s := requireStack(t)
	name := "since-until"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sh", "-c", "echo early; sleep 2; echo late; sleep 300")
	defer docker(t, s.direct, "rm", "-f", name)
	waitFor(t, func() bool { return strings.Contains(docker(t, s.direct, "logs", name).stdout, "late") })
	lines := strings.Split(strings.TrimSpace(mustDocker(t, s.direct, "logs", "--timestamps", name)), "\n")
	lateAt, err := time.Parse(time.RFC3339Nano, strings.Fields(lines[1])[0])
	if err != nil {
		t.Fatal(err)
	}
	cut := lateAt.Add(-time.Second).Format(time.RFC3339Nano)
	if out := mustDocker(t, s.fwd, "logs", "--since", cut, name); out != "late\n" {
		t.Fatalf("logs --since = %q", out)
	}
	if out := mustDocker(t, s.fwd, "logs", "--until", cut, name); out != "early\n" {
		t.Fatalf("logs --until = %q", out)
	}
	// next-exit waits for the coming exit; not-running returns it.
	done := make(chan string, 1)
	go func() { done <- strings.TrimSpace(docker(t, s.direct, "wait", name).stdout) }()
	time.Sleep(300 * time.Millisecond)
	mustDocker(t, s.direct, "kill", "-s", "TERM", name)
	select {
	case code := <-done:
		if code != "143" {
			t.Fatalf("wait = %s, want 143", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("wait did not return after the kill")
	}
	resp, body := s.apiRequest(t, "POST", "/v1.50/containers/"+name+"/wait?condition=not-running", nil, true)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"StatusCode":143`) {
		t.Fatalf("wait not-running on an exited container: %d %s", resp.StatusCode, body)
	}
	resp, body = s.apiRequest(t, "POST", "/v1.50/containers/"+name+"/wait?condition=bogus", nil, true)
	if resp.StatusCode != 400 {
		t.Fatalf("bad condition: %d %s", resp.StatusCode, body)
	}
}

// An exited container keeps its filesystem while its instance lingers
// (the test stack's --linger is 2s); after that it starts on a fresh one,
// and inspect says which.
func TestExitedContainerKeepsItsFilesWhileItLingers(t *testing.T) {
	s := requireStack(t)
	name := "keeper"
	mustDocker(t, s.direct, "run", "--name", name, "busybox", "sh", "-c", "test -f /tmp/mark && echo seen || (echo fresh; touch /tmp/mark)")
	defer docker(t, s.direct, "rm", "-f", name)
	if out := mustDocker(t, s.direct, "logs", name); out != "fresh\n" {
		t.Fatalf("first run: %q", out)
	}
	if inst := strings.TrimSpace(mustDocker(t, s.direct, "inspect", "--format", "{{.GraphDriver.Data.Instance}}", name)); inst != "up" {
		t.Fatalf("instance right after exit = %q, want up", inst)
	}
	mustDocker(t, s.direct, "start", "-a", name)
	if out := mustDocker(t, s.direct, "logs", name); out != "fresh\nseen\n" {
		t.Fatalf("second run on the lingering instance: %q", out)
	}
	waitFor(t, func() bool {
		return strings.TrimSpace(mustDocker(t, s.direct, "inspect", "--format", "{{.GraphDriver.Data.Instance}}", name)) == "gone"
	})
	mustDocker(t, s.direct, "start", "-a", name)
	if out := mustDocker(t, s.direct, "logs", name); out != "fresh\nseen\nfresh\n" {
		t.Fatalf("run after the instance ended: %q", out)
	}
}
