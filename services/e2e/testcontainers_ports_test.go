package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestTestcontainersPorts runs testcontainers-go's everyday shape: a
// GenericContainer with ExposedPorts, waited for with wait.ForHTTP and
// wait.ForListeningPort, then reached from the test at MappedPort /
// PortEndpoint on the client's machine — directly, through the forwarder
// and on the Docker engine, each in a process of its own
// (testcontainers-go reads DOCKER_HOST once per process).
func TestTestcontainersPorts(t *testing.T) {
	s := requireStack(t)
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestTestcontainersPortsChild$", "-test.v")
			cmd.Env = append(os.Environ(), "E2E_TC_CHILD=1", "DOCKER_HOST="+h.host, "TESTCONTAINERS_RYUK_DISABLED=true",
				// The ports are on this machine's loopback; without the
				// override testcontainers-go, seeing /.dockerenv, would
				// dial the default gateway instead.
				"TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1",
				"DOCKER_CONFIG="+dockerConfigDir(t))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestTestcontainersPortsChild") {
				t.Fatalf("testcontainers-go on %s: %v\n%s", h.name, err, out)
			}
		})
	}
}

// TestTestcontainersPortsChild is TestTestcontainersPorts's work, in its
// own process.
func TestTestcontainersPortsChild(t *testing.T) {
	if os.Getenv("E2E_TC_CHILD") == "" {
		t.Skip("run by TestTestcontainersPorts in a process of its own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	httpd := func(body string) []string {
		return []string{"sh", "-c", "mkdir -p /www && echo " + body + " > /www/index.html && exec httpd -f -p 8080 -h /www"}
	}
	tests := []struct {
		name string
		wait wait.Strategy
	}{
		{"wait for HTTP", wait.ForHTTP("/").WithPort("8080/tcp").WithStartupTimeout(2 * time.Minute)},
		{"wait for the listening port", wait.ForListeningPort("8080/tcp").WithStartupTimeout(2 * time.Minute)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := fmt.Sprintf("tc-%d", i)
			c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
				ContainerRequest: testcontainers.ContainerRequest{
					Image:        "busybox:latest",
					Cmd:          httpd(body),
					ExposedPorts: []string{"8080/tcp"},
					WaitingFor:   tt.wait,
				},
				Started: true,
			})
			testcontainers.CleanupContainer(t, c)
			if err != nil {
				t.Fatal(err)
			}
			port, err := c.MappedPort(ctx, "8080/tcp")
			if err != nil {
				t.Fatal(err)
			}
			if port.Port() == "8080" {
				t.Logf("host port is the container port (allowed, but the test wants them apart)")
			}
			endpoint, err := c.PortEndpoint(ctx, "8080/tcp", "http")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(endpoint, ":"+port.Port()) {
				t.Fatalf("PortEndpoint %q does not end in MappedPort %s", endpoint, port.Port())
			}
			resp, err := http.Get(endpoint + "/")
			if err != nil {
				t.Fatalf("GET %s: %v", endpoint, err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(got)) != body {
				t.Fatalf("GET %s: %d %q, want 200 %q", endpoint, resp.StatusCode, got, body)
			}
		})
	}
}
