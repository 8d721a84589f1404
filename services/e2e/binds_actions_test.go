package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGitHubActionsContainerJob runs a job the way the GitHub Actions
// runner does with `container:` and `services:`: a network, a service
// container with a health check, the job container with the workspace
// bound at /__w and `tail -f /dev/null` as entrypoint, steps as
// `docker exec -i job sh -e /__w/_temp/<step>.sh` of scripts the runner
// writes on the host, results read on the host from the GITHUB_ENV and
// GITHUB_OUTPUT files, and a container action as `docker run --rm` with
// the same binds. The job container also has /var/run/docker.sock bound,
// as the runner does (what a docker CLI does over it:
// dockersock_test.go).
func TestGitHubActionsContainerJob(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ws := t.TempDir()
			writeFile(t, filepath.Join(ws, "repo", "README.md"), "checked out on the host\n", 0o644)
			writeFile(t, filepath.Join(ws, "repo", "scripts", "build.sh"), "#!/bin/sh\necho built > build.out\n", 0o755)
			suffix := uniq("")
			netName, job, svc := "gha-net-"+suffix, "gha-job-"+suffix, "gha-svc-"+suffix
			port := ports(t, 1)[0]
			mustDocker(t, h.host, "network", "create", netName)
			t.Cleanup(func() {
				docker(t, h.host, "rm", "-f", job, svc)
				docker(t, h.host, "network", "rm", netName)
			})

			// services: a web server with a health check, reached by name.
			mustDocker(t, h.host, "run", "-d", "--name", svc, "--network", netName, "--network-alias", "web", "--expose", port,
				"--health-cmd", "test -f /tmp/ready", "--health-interval", "500ms", "--health-retries", "30",
				"busybox", "sh", "-c", "mkdir -p /www && echo service-ok > /www/index.html && touch /tmp/ready && exec httpd -f -p "+port+" -h /www")
			deadline := time.Now().Add(60 * time.Second)
			for {
				st := strings.TrimSpace(mustDocker(t, h.host, "inspect", "-f", "{{.State.Health.Status}}", svc))
				if st == "healthy" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("service container not healthy: %s", st)
				}
				time.Sleep(300 * time.Millisecond)
			}

			// The job container.
			mustDocker(t, h.host, "create", "--name", job, "--network", netName, "--workdir", "/__w/repo",
				"-v", ws+":/__w", "-v", "/var/run/docker.sock:/var/run/docker.sock", "-e", "CI=true", "--entrypoint", "tail", "busybox", "-f", "/dev/null")
			mustDocker(t, h.host, "start", job)

			env := map[string]string{}
			for n := 1; n <= 20; n++ {
				envFile := fmt.Sprintf("_temp/_runner_file_commands/set_env_%d", n)
				outFile := fmt.Sprintf("_temp/_runner_file_commands/set_output_%d", n)
				writeFile(t, filepath.Join(ws, envFile), "", 0o644)
				writeFile(t, filepath.Join(ws, outFile), "", 0o644)
				script := fmt.Sprintf("echo \"STEP%[1]d=value-%[1]d\" >> \"$GITHUB_ENV\"\necho \"result=%[1]d\" >> \"$GITHUB_OUTPUT\"\n", n)
				switch n {
				case 1:
					script += "cat README.md\n"
				case 2:
					script += "./scripts/build.sh\ncat build.out\n"
				case 3:
					script += "wget -qO- http://web:" + port + "/\n"
				case 5:
					script += "test -S /var/run/docker.sock\n"
				case 4:
					script += "mkdir -p dist/empty && echo artifact > dist/app.bin && chmod 751 dist/app.bin\n"
				}
				for k, v := range env {
					script += fmt.Sprintf("test \"$%s\" = %q\n", k, v)
				}
				writeFile(t, filepath.Join(ws, "_temp", fmt.Sprintf("step%d.sh", n)), script, 0o644)
				args := []string{"exec", "-i", "--workdir", "/__w/repo", "-e", "GITHUB_ENV=/__w/" + envFile, "-e", "GITHUB_OUTPUT=/__w/" + outFile}
				for k, v := range env {
					args = append(args, "-e", k+"="+v)
				}
				args = append(args, job, "sh", "-e", fmt.Sprintf("/__w/_temp/step%d.sh", n))
				r := dockerIn(t, h.host, nil, args...)
				if r.code != 0 {
					t.Fatalf("step %d: exit %d\nstdout: %s\nstderr: %s", n, r.code, r.stdout, r.stderr)
				}
				switch n {
				case 1:
					if r.stdout != "checked out on the host\n" {
						t.Fatalf("step 1 output %q", r.stdout)
					}
				case 2:
					if r.stdout != "built\n" {
						t.Fatalf("step 2 output %q", r.stdout)
					}
				case 3:
					if r.stdout != "service-ok\n" {
						t.Fatalf("step 3 output %q", r.stdout)
					}
				}
				// The runner reads the step's file commands right after the exec.
				if got := readFile(filepath.Join(ws, outFile)); got != fmt.Sprintf("result=%d\n", n) {
					t.Fatalf("step %d GITHUB_OUTPUT on the host: %q", n, got)
				}
				got := readFile(filepath.Join(ws, envFile))
				k, v, ok := strings.Cut(strings.TrimSpace(got), "=")
				if !ok || k != fmt.Sprintf("STEP%d", n) {
					t.Fatalf("step %d GITHUB_ENV on the host: %q", n, got)
				}
				env[k] = v
			}
			if got := readFile(filepath.Join(ws, "repo", "dist", "app.bin")); got != "artifact\n" {
				t.Fatalf("artifact on the host: %q", got)
			}
			if st, err := os.Stat(filepath.Join(ws, "repo", "dist", "empty")); err != nil || !st.IsDir() {
				t.Fatalf("empty directory on the host: %v", err)
			}

			// A container action: docker run --rm with the same binds.
			outFile := "_temp/_runner_file_commands/set_output_action"
			writeFile(t, filepath.Join(ws, outFile), "", 0o644)
			out := mustDocker(t, h.host, "run", "--rm", "--network", netName, "--workdir", "/github/workspace",
				"-v", ws+"/repo:/github/workspace", "-v", ws+"/_temp/_runner_file_commands:/github/file_commands",
				"-e", "GITHUB_OUTPUT=/github/file_commands/set_output_action",
				"busybox", "sh", "-c", "cat build.out && echo \"action=done\" >> \"$GITHUB_OUTPUT\" && wget -qO- http://web:"+port+"/")
			if out != "built\nservice-ok\n" {
				t.Fatalf("container action output %q", out)
			}
			if got := readFile(filepath.Join(ws, outFile)); got != "action=done\n" {
				t.Fatalf("container action's GITHUB_OUTPUT on the host: %q", got)
			}
		})
	}
}
