package e2e

import (
	"strings"
	"testing"
)

// A container whose agent never calls back (here: the callback address
// refuses) stores no output; docker logs reads what its instance wrote to
// Cloud Logging instead (gcpsim's Logging API, through the Go client), so
// the user sees why it failed.
func TestLogsOfAFailedBootComeFromCloudLogging(t *testing.T) {
	s := otherStack(t, []string{"--callback-url", "ws://127.0.0.1:1", "--boot-timeout", "8s"}, nil)
	id := strings.TrimSpace(mustDocker(t, s.direct, "create", "busybox", "echo", "never"))
	if r := docker(t, s.direct, "start", id); r.code == 0 {
		t.Fatalf("start with an unreachable callback address succeeded: %s", r.stdout)
	}
	if st := strings.TrimSpace(mustDocker(t, s.direct, "inspect", "-f", "{{.State.Error}}", id)); !strings.Contains(st, "call back") {
		t.Fatalf("State.Error = %q, want the failed call back", st)
	}
	r := docker(t, s.direct, "logs", id)
	if r.code != 0 {
		t.Fatalf("docker logs: exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "never") {
		t.Fatalf("the container's process ran: %s", r.stdout+r.stderr)
	}
	if !strings.Contains(r.stderr, "invocation") || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Fatalf("docker logs of the failed boot:\nstdout: %s\nstderr: %s\nwant the agent's lines about its invocation and the callback address", r.stdout, r.stderr)
	}
	t.Logf("docker logs of a failed boot:\n%s", r.stderr)
	mustDocker(t, s.direct, "rm", id)
}
