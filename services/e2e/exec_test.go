package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
)

var (
	refOnce sync.Once
	refOK   bool
)

// reference returns the machine's Docker engine as a third host when it
// answers (with the busybox test image loaded), so scenarios run against
// it too and outputs are compared.
func reference(t *testing.T) (string, bool) {
	refOnce.Do(func() {
		if err := loadReference(t); err != nil {
			t.Logf("no comparison with a Docker engine: %v", err)
			return
		}
		refOK = true
	})
	return referenceDocker, refOK
}

// execCase is one docker exec scenario with what the user must see.
type execCase struct {
	name   string
	args   []string // after "exec"; "C" is replaced by the container name
	stdin  []byte
	stdout string
	stderr string // "" means not checked
	code   int
}

var execCases = []execCase{
	{name: "ls /", args: []string{"C", "ls", "/bin/sh"}, stdout: "/bin/sh\n"},
	{name: "env, workdir and user", args: []string{"-e", "X=1", "-w", "/tmp", "-u", "nobody", "C", "sh", "-c", "id; pwd; echo $X"}, stdout: "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n/tmp\n1\n"},
	{name: "exit code propagates", args: []string{"C", "sh", "-c", "exit 7"}, code: 7},
	{name: "stderr kept apart", args: []string{"C", "sh", "-c", "echo out; echo err >&2; exit 3"}, stdout: "out\n", stderr: "err\n", code: 3},
	{name: "stdin echoed until EOF", args: []string{"-i", "C", "cat"}, stdin: []byte("abc\ndef\n"), stdout: "abc\ndef\n"},
	{name: "closed stdin still runs and prints", args: []string{"-i", "C", "sh", "-c", "echo hi"}, stdin: []byte{}, stdout: "hi\n"},
	{name: "missing binary is 126", args: []string{"C", "nope"}, code: 126},
}

func TestExec(t *testing.T) {
	s := requireStack(t)
	hosts := s.hosts()
	if ref, ok := reference(t); ok {
		hosts = append(hosts, struct{ name, host string }{"docker", ref})
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			name := "exec-" + h.name
			mustDocker(t, h.host, "run", "-d", "--name", name, "busybox", "sleep", "300")
			defer docker(t, h.host, "rm", "-f", name)
			for _, tc := range execCases {
				t.Run(tc.name, func(t *testing.T) {
					args := []string{"exec"}
					for _, a := range tc.args {
						if a == "C" {
							a = name
						}
						args = append(args, a)
					}
					r := dockerIn(t, h.host, tc.stdin, args...)
					if r.code != tc.code || (tc.stdout != "" || tc.code == 0) && r.stdout != tc.stdout || tc.stderr != "" && r.stderr != tc.stderr {
						t.Fatalf("exit %d stdout %q stderr %q; want %d %q %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
					}
				})
			}
		})
	}
}

func TestRunInteractivePassesStdinByteExact(t *testing.T) {
	s := requireStack(t)
	data := make([]byte, 3<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x", sha256.Sum256(data))
	for _, h := range s.hosts() {
		t.Run(h.name, func(t *testing.T) {
			r := dockerIn(t, h.host, data, "run", "--rm", "-i", "busybox", "sha256sum")
			if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
				t.Fatalf("exit %d stdout %q stderr %q; want sum %s", r.code, r.stdout, r.stderr, want)
			}
			r = dockerIn(t, h.host, data, "run", "--rm", "-i", "busybox", "cat")
			if r.code != 0 || !bytes.Equal([]byte(r.stdout), data) {
				t.Fatalf("cat returned %d bytes (exit %d), want the %d bytes sent", len(r.stdout), r.code, len(data))
			}
		})
	}
}

func TestInspectShowsExecs(t *testing.T) {
	s := requireStack(t)
	name := "exec-inspect"
	mustDocker(t, s.direct, "run", "-d", "--name", name, "busybox", "sleep", "300")
	defer docker(t, s.direct, "rm", "-f", name)
	mustDocker(t, s.direct, "exec", "-d", name, "sleep", "30")
	waitFor(t, func() bool {
		return strings.TrimSpace(mustDocker(t, s.direct, "inspect", "--format", "{{len .ExecIDs}}", name)) == "1"
	})
}
