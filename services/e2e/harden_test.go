package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLargeStartAndExecMessages: a Start or Exec message larger than the
// agent's frame limit used to drop the agent's connection, and the run or
// exec hung for good. Now each either works or is refused with a 400;
// never a hang.
func TestLargeStartAndExecMessages(t *testing.T) {
	s := requireStack(t)
	big := strings.Repeat("x", 70<<10)
	t.Run("run with a 70 KB variable", func(t *testing.T) {
		done := make(chan result, 1)
		go func() {
			done <- docker(t, s.direct, "run", "--rm", "-e", "BIG="+big, "busybox", "sh", "-c", `echo ${#BIG}`)
		}()
		select {
		case r := <-done:
			if r.code != 0 || strings.TrimSpace(r.stdout) != fmt.Sprint(len(big)) {
				t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("docker run with a 70 KB variable hangs")
		}
	})

	// Under the body limit as sent, over the agent's frame limit once
	// encoded ('<' is six bytes in JSON): refused at create with a 400.
	escaped := strings.Repeat("<", 3<<20)
	t.Run("create whose message would be over the frame limit", func(t *testing.T) {
		resp, b := s.apiRequest(t, "POST", "/v1.41/containers/create", rawJSON(map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "Env": []string{"BIG=" + escaped}}), true)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "bytes encoded, over the") {
			t.Fatalf("create: %d %.300s", resp.StatusCode, b)
		}
	})

	name := "harden-big-exec"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sleep", "300")
	defer docker(t, s.direct, "rm", "-f", name)
	for _, size := range []int{70 << 10, 1 << 20, 8 << 20} {
		t.Run(fmt.Sprintf("exec with a %d KiB argument", size>>10), func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"Cmd": []string{"echo", strings.Repeat("y", size)}, "AttachStdout": true})
			resp, b := s.apiRequest(t, "POST", "/v1.41/containers/"+name+"/exec", body, true)
			if resp.StatusCode == 400 || resp.StatusCode == 413 {
				if !strings.Contains(string(b), `"message"`) {
					t.Fatalf("refusal without docker's message: %s", b)
				}
				return
			}
			if resp.StatusCode != 201 {
				t.Fatalf("exec create: %d %s", resp.StatusCode, b)
			}
			var created struct{ Id string }
			_ = json.Unmarshal(b, &created)
			done := make(chan struct{})
			var code int
			var out []byte
			go func() {
				defer close(done)
				r, ob := s.apiRequest(t, "POST", "/v1.41/exec/"+created.Id+"/start", []byte(`{"Detach":false,"Tty":true}`), true)
				code, out = r.StatusCode, ob
			}()
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("exec start hangs")
			}
			if code != 200 && code != 400 {
				t.Fatalf("exec start: %d %.300s", code, out)
			}
			t.Logf("exec start: %d, %d bytes out", code, len(out))
			// The container is still reachable afterwards.
			if out := mustDocker(t, s.direct, "exec", name, "echo", "alive"); strings.TrimSpace(out) != "alive" {
				t.Fatalf("exec after: %q", out)
			}
		})
	}
	t.Run("exec whose message would be over the frame limit", func(t *testing.T) {
		resp, b := s.apiRequest(t, "POST", "/v1.41/containers/"+name+"/exec", rawJSON(map[string]any{"Cmd": []string{"echo", escaped}}), true)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "bytes encoded, over the") {
			t.Fatalf("exec create: %d %.300s", resp.StatusCode, b)
		}
		if out := mustDocker(t, s.direct, "exec", name, "echo", "alive"); strings.TrimSpace(out) != "alive" {
			t.Fatalf("exec after: %q", out)
		}
	})
}

// rawJSON encodes v without escaping <, > and &, as other clients do.
func rawJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.Bytes()
}

// TestCreateValidationAsDocker: values dockerd refuses at create are
// refused here with its words, through the docker CLI, on both ways in and
// on the machine's Docker engine (the same message from each). A 1 ns
// health-check interval used to be accepted, and would burn a core.
func TestCreateValidationAsDocker(t *testing.T) {
	s := requireStack(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--health-cmd", "true", "--health-interval", "1ns"}, "Interval in Healthcheck cannot be less than 1ms"},
		{[]string{"--health-cmd", "true", "--health-timeout", "1ns"}, "Timeout in Healthcheck cannot be less than 1ms"},
		{[]string{"--health-cmd", "true", "--health-start-period", "1ns"}, "StartPeriod in Healthcheck cannot be less than 1ms"},
		{[]string{"--stop-signal", "SIGFOO"}, "Invalid signal: SIGFOO"},
		{[]string{"--restart", "sometimes"}, "invalid restart policy 'sometimes'"},
		{[]string{"--restart", "always:3"}, "maximum retry count cannot be used with restart policy 'always'"},
		{[]string{"--restart", "on-failure:-1"}, "maximum retry count cannot be negative"},
	}
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			for _, tc := range cases {
				args := append(append([]string{"create"}, tc.args...), "busybox", "true")
				r := docker(t, h.host, args...)
				if r.code == 0 {
					docker(t, h.host, "rm", strings.TrimSpace(r.stdout))
				}
				// The first create on a fresh stack pulls first: the
				// refusal is the last line.
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				if r.code == 0 || lines[len(lines)-1] != "Error response from daemon: "+tc.want {
					t.Errorf("docker %s: exit %d stderr %q, want %q", strings.Join(args, " "), r.code, r.stderr, tc.want)
				}
			}
		})
	}
}
