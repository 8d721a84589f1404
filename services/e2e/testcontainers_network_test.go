package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// TestTestcontainersNetwork runs testcontainers-go's network.New with two
// containers talking by alias, against each host in a process of its own
// (testcontainers-go reads DOCKER_HOST once per process).
func TestTestcontainersNetwork(t *testing.T) {
	s := requireStack(t)
	if _, ok := reference(t); ok {
		if err := loadNettest(s.bin, referenceDocker); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestTestcontainersNetworkChild$", "-test.v")
			cmd.Env = append(os.Environ(), "E2E_TC_CHILD=1", "DOCKER_HOST="+h.host, "TESTCONTAINERS_RYUK_DISABLED=true",
				"DOCKER_CONFIG="+dockerConfigDir(t))
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestTestcontainersNetworkChild") {
				t.Fatalf("testcontainers-go on %s: %v\n%s", h.name, err, out)
			}
		})
	}
}

// TestTestcontainersNetworkChild is TestTestcontainersNetwork's work, in
// its own process.
func TestTestcontainersNetworkChild(t *testing.T) {
	if os.Getenv("E2E_TC_CHILD") == "" {
		t.Skip("run by TestTestcontainersNetwork in a process of its own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Remove(context.Background())
	srv, err := testcontainers.Run(ctx, "nettest:latest",
		testcontainers.WithCmd("netserver", "9000"),
		network.WithNetwork([]string{"pingsrv"}, nw),
		testcontainers.WithWaitStrategy(wait.ForLog("listening")))
	testcontainers.CleanupContainer(t, srv)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := testcontainers.Run(ctx, "nettest:latest",
		testcontainers.WithCmd("netclient", "ping", "pingsrv:9000", "5"),
		network.WithNetwork(nil, nw),
		testcontainers.WithWaitStrategy(wait.ForExit()))
	testcontainers.CleanupContainer(t, cli)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cli.State(ctx)
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("client by alias: state %+v, %v", st, err)
	}
	logs, err := cli.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(logs)
	if f := strings.Fields(string(b)); len(f) < 2 {
		t.Fatalf("client printed %q, want two round-trip times", b)
	}
}
