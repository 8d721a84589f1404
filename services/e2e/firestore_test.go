package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/store/firestore/fsemu"
)

// firestoreStack starts a control plane on the Firestore emulator, in a
// project of its own.
func firestoreStack(t testing.TB, args ...string) *stack {
	t.Helper()
	requireStack(t)
	fsemu.Start(t)
	return otherStack(t, append([]string{"--store", "firestore", "--gcp-project", fmt.Sprintf("e2e-%d", time.Now().UnixNano())}, args...), nil)
}

// storeOps reads the control plane's count of store document operations
// (eventWrites: how many of the writes stored event batches).
func storeOps(t testing.TB, s *stack) (reads, writes, eventWrites int64) {
	t.Helper()
	resp, body := s.apiRequest(t, http.MethodGet, "/sockerless/v1/store-stats", nil, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("store stats: %d %s", resp.StatusCode, body)
	}
	var st struct{ Reads, Writes, EventWrites int64 }
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st.Reads, st.Writes, st.EventWrites
}

// What one `docker run --rm busybox echo hi` costs in Firestore document
// operations, once the image and its function are known: the container
// at create (1: its document is its name's reservation), the claim of the
// start (1), the output and the exit (1, stored together when the hub
// reads them together), the address on the default bridge at start and
// its release at exit (2), the ended instance's usage record (1), the
// removal of the container (1): 7. The start waits a moment (10 ms, and
// 10 ms past each output stored) for an exit that follows at once, and the
// hub 3 ms behind output for the exit, so a short run's exit records it
// whole. A slow machine adds up to two: the start recorded running when
// the exit comes later than that, and the output and the exit stored
// apart.
// The run's events are stored in batches the engine flushes every 200 ms:
// one batch when they come close together, more on a slow machine, where
// they fall into several flushes. So the run is counted as its own writes
// plus one for its events, whatever the timing (8, at most 10); the
// batches it really took are logged.
//
// Its reads: at create the image (its name and its record, in one call,
// made while the container is stored) and the image's function (which the
// start then takes from the control plane's short-lived cache, as it does
// the image record), but not the default bridge (a predefined network's
// settings never change); the listener on the container that the create
// opens beside its write its first state (1, or 2 when it looks before
// the write commits) and each change (the claim, the output and exit, the
// removal: 3, and up to 2 more on a slow machine, as for the writes); the
// published ports of the client's containers (1): 9. The attach and the
// wait read the container from that listener, not from the store (on a
// slow machine they may come before it is up: 2 more); the start decides
// on the state its control plane knows. A slow machine's start may also
// come more than the caches' second after the create and read the image
// and the function again (3). The start lists no networks: the
// container's view comes from the network it joins. The runs' cheapest is
// held to the target, 12 (which a slow machine may exceed).
//
// A loaded machine (CI runs the packages' tests side by side) can put a
// run on the slow path every time it is tried, so the run is measured
// three times (up to five while the cheapest exceeds a bound) and the
// cheapest is held to the bounds: what the path costs, not what the
// machine's timing adds.
func TestFirestoreOperationsPerRun(t *testing.T) {
	requireStack(t)
	fsemu.Start(t)
	s := otherStack(t, []string{"--store", "firestore", "--gcp-project", fmt.Sprintf("e2e-ops-%d", time.Now().UnixNano())},
		[]string{"SOCKERLESS_STORE_TRACE=1"}) // who spends each read, in its log
	mustDocker(t, s.direct, "run", "--rm", "busybox", "true") // image and function
	minReads, minOwn := int64(-1), int64(-1)
	minWaiterReads := -1
	within := func() bool { return minOwn+1 <= 10 && minReads <= 12 && minWaiterReads <= 1 }
	for i := 0; i < 3 || i < 5 && !within(); i++ {
		time.Sleep(time.Second) // background work of the run before settles
		r0, w0, e0 := storeOps(t, s)
		log0 := logSize(s)
		if out := mustDocker(t, s.direct, "run", "--rm", "busybox", "echo", "hi"); out != "hi\n" {
			t.Fatalf("run printed %q", out)
		}
		time.Sleep(time.Second) // the removal after the CLI returns
		r1, w1, e1 := storeOps(t, s)
		// The CLI's attach and wait: answered from the create's listener.
		waiterReads := 0
		for _, line := range strings.Split(logSince(t, s, log0), "\n") {
			if strings.Contains(line, " store read ") && (strings.Contains(line, "(*Engine).AttachPoint") || strings.Contains(line, "(*Engine).Wait ")) {
				waiterReads++
			}
		}
		if minWaiterReads < 0 || waiterReads < minWaiterReads {
			minWaiterReads = waiterReads
		}
		reads, own, batches := r1-r0, (w1-w0)-(e1-e0), e1-e0
		t.Logf("run %d: docker run --rm busybox echo hi: %d document reads, %d writes (%d of state, %d event batches)", i+1, reads, w1-w0, own, batches)
		if batches < 1 {
			t.Errorf("run %d: the run's events were not stored", i+1)
		}
		if minReads < 0 || reads < minReads {
			minReads = reads
		}
		if minOwn < 0 || own < minOwn {
			minOwn = own
		}
	}
	if minOwn+1 > 10 {
		t.Errorf("%d writes per run at the least (%d of state and one event batch), want at most 10", minOwn+1, minOwn)
	}
	if minReads > 12 {
		t.Errorf("%d reads per run at the least, want at most 12", minReads)
	}
	// Without the create's listener both read, every run; with it neither
	// does, but on a loaded machine the attach may come before the
	// listener is up.
	if minWaiterReads > 1 {
		t.Errorf("the attach and the wait of docker run read the store %d times at the least, want at most 1 (the create's listener has the container)", minWaiterReads)
	}
}

// logSince is the control plane's log past offset off (logSize).
func logSince(t testing.TB, s *stack, off int64) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "controlplane.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(off, int64(len(b))):])
}

// Two control plane processes on one Firestore store, one port and one
// gcpsim, as Cloud Run runs the old and the new instance during a
// redeploy: both see the same containers, names stay unique across them,
// a wait or logs -f on one sees what the other's agents report, and when
// one drains, its agents move to the other without losing a line.
func TestTwoControlPlanesOneStore(t *testing.T) {
	requireStack(t)
	fsemu.Start(t)
	project := fmt.Sprintf("e2e-two-%d", time.Now().UnixNano())
	a := otherStack(t, []string{"--store", "firestore", "--gcp-project", project}, nil,
		func(s *stack) { s.tcpOpts = "?reuseport=true" })
	b := twinStack(t, a)

	name := fmt.Sprintf("one-name-%d", time.Now().UnixNano())
	mustDocker(t, a.direct, "create", "--name", name, "busybox", "true")
	if r := docker(t, b.direct, "create", "--name", name, "busybox", "true"); r.code == 0 || !strings.Contains(r.stderr, "is already in use") {
		t.Fatalf("second create of %s on the other control plane: exit %d, %s", name, r.code, r.stderr)
	}
	mustDocker(t, b.direct, "rm", name)

	counter := func(n, code int) string {
		return fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo $i; i=$((i+1)); usleep 20000; done; exit %d", n, code)
	}
	want := func(n int) string {
		var w strings.Builder
		for i := range n {
			fmt.Fprintf(&w, "%d\n", i)
		}
		return w.String()
	}

	// Run on B, follow and wait on A.
	c1 := mustDocker(t, b.direct, "run", "-d", "busybox", "sh", "-c", counter(60, 7))
	c1 = strings.TrimSpace(c1)
	if out := mustDocker(t, a.direct, "logs", "-f", c1); out != want(60) {
		t.Fatalf("logs -f on the other control plane: %s", summarize(out))
	}
	if code := strings.TrimSpace(mustDocker(t, a.direct, "wait", c1)); code != "7" {
		t.Fatalf("wait on the other control plane = %s, want 7", code)
	}

	// An --rm container ends with its exit and its removal in one write,
	// on whichever control plane its agent called back: A, waiting and
	// following, gets its exit code and its last output all the same
	// (from its final state when B removed it).
	for code := 3; code <= 6; code++ {
		id := strings.TrimSpace(mustDocker(t, b.direct, "run", "-d", "--rm", "busybox", "sh", "-c",
			fmt.Sprintf("usleep 500000; echo bye %d; exit %d", code, code)))
		logs := make(chan result, 1)
		go func() { logs <- docker(t, a.direct, "logs", "-f", id) }()
		if got := docker(t, a.direct, "wait", id); strings.TrimSpace(got.stdout) != strconv.Itoa(code) {
			t.Fatalf("wait on A for an --rm container on B: exit %d, %q %s; want %d", got.code, got.stdout, got.stderr, code)
		}
		if got := <-logs; got.code != 0 || got.stdout != fmt.Sprintf("bye %d\n", code) {
			t.Fatalf("logs -f on A of an --rm container on B: exit %d, %q %s", got.code, got.stdout, got.stderr)
		}
		if r := docker(t, a.direct, "inspect", id); r.code == 0 {
			t.Fatalf("A still finds the --rm container %s after its exit", id)
		}
	}

	// docker events on A shows, live, a container's life on B (the store's
	// listener), each event once, in order.
	evName := fmt.Sprintf("events-on-b-%d", time.Now().UnixNano())
	cmd := exec.Command("docker", "events", "--filter", "container="+evName, "--format", "{{.Action}}")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+a.direct, "DOCKER_CONFIG="+dockerConfigDir(t))
	var evOut syncBuffer
	cmd.Stdout = &evOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	time.Sleep(time.Second) // subscribed, and A's listener open
	mustDocker(t, b.direct, "run", "--rm", "--name", evName, "busybox", "true")
	wantEvents := "create attach start die destroy"
	for deadline := time.Now().Add(30 * time.Second); strings.Join(strings.Fields(evOut.String()), " ") != wantEvents; {
		if time.Now().After(deadline) {
			t.Fatalf("docker events on A of a run on B printed %q, want %q", strings.Fields(evOut.String()), wantEvents)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Rename on B a container A waits on: A's watch of it follows it to
	// the document of its new name, so the wait gets the exit, not a
	// removal, and A finds it by its new name only.
	c3 := strings.TrimSpace(mustDocker(t, b.direct, "run", "-d", "busybox", "sh", "-c",
		"while [ ! -e /tmp/go ]; do usleep 20000; done; exit 5"))
	waited := make(chan result, 1)
	go func() { waited <- docker(t, a.direct, "wait", c3) }()
	time.Sleep(time.Second) // A's wait and its listener open
	renamed := fmt.Sprintf("renamed-on-b-%d", time.Now().UnixNano())
	mustDocker(t, b.direct, "rename", c3, renamed)
	mustDocker(t, b.direct, "exec", renamed, "touch", "/tmp/go")
	if r := <-waited; r.code != 0 || strings.TrimSpace(r.stdout) != "5" {
		t.Fatalf("wait on A across a rename on B: exit %d, %q %s; want 5", r.code, r.stdout, r.stderr)
	}
	if id := strings.TrimSpace(mustDocker(t, a.direct, "inspect", "--format", "{{.ID}}", renamed)); id != c3 {
		t.Fatalf("A finds %q as %s, want %s", renamed, id, c3)
	}
	mustDocker(t, a.direct, "rm", renamed)

	// Run on A, then drain A: its agents move to B.
	c2 := strings.TrimSpace(mustDocker(t, a.direct, "run", "-d", "busybox", "sh", "-c", counter(150, 9)))
	time.Sleep(time.Second)
	psA := mustDocker(t, a.direct, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}")
	psB := mustDocker(t, b.direct, "ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}")
	if !strings.Contains(psA, c2+" Up") || !strings.Contains(psB, c2+" Up") || !strings.Contains(psB, c1+" Exited (7)") {
		t.Fatalf("ps -a differs:\nA:\n%s\nB:\n%s", psA, psB)
	}
	a.cp.stop()
	if code := strings.TrimSpace(mustDocker(t, b.direct, "wait", c2)); code != "9" {
		t.Fatalf("wait after the drain = %s, want 9", code)
	}
	if out := mustDocker(t, b.direct, "logs", c2); out != want(150) {
		t.Fatalf("logs after the agent moved: %s", summarize(out))
	}
	mustDocker(t, b.direct, "rm", c1, c2)
}

// Starts of one container that race, on one control plane and on two
// sharing the store, run it once: one start wins the claim, the others
// find it started. (Each start invokes its instance while its claim is
// stored: one that loses cancels the invocation and its agent is told the
// instance is ended, so no instance stays tied up and the winner finds a
// free one.)
func TestConcurrentStartsRunOnce(t *testing.T) {
	requireStack(t)
	fsemu.Start(t)
	project := fmt.Sprintf("e2e-starts-%d", time.Now().UnixNano())
	a := otherStack(t, []string{"--store", "firestore", "--gcp-project", project}, nil,
		func(s *stack) { s.tcpOpts = "?reuseport=true" })
	b := twinStack(t, a)
	for round, hosts := range [][]string{{a.direct, a.direct, a.direct}, {a.direct, b.direct, a.direct, b.direct}} {
		id := strings.TrimSpace(mustDocker(t, a.direct, "create", "busybox", "sh", "-c", "echo ran; sleep 1; exit 5"))
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Go(func() {
				if r := docker(t, h, "start", id); r.code != 0 {
					t.Errorf("round %d: start: exit %d, %s", round, r.code, r.stderr)
				}
			})
		}
		wg.Wait()
		if code := strings.TrimSpace(mustDocker(t, a.direct, "wait", id)); code != "5" {
			t.Fatalf("round %d: wait = %s, want 5", round, code)
		}
		if out := mustDocker(t, b.direct, "logs", id); out != "ran\n" {
			t.Fatalf("round %d: logs %q, want one run's", round, out)
		}
		mustDocker(t, a.direct, "rm", id)
	}
}

// A create takes the image a name gives now, also right after another
// control plane sharing the store moved the name or took it away.
func TestImageNameMovedOnAnotherControlPlane(t *testing.T) {
	requireStack(t)
	fsemu.Start(t)
	project := fmt.Sprintf("e2e-moved-%d", time.Now().UnixNano())
	a := otherStack(t, []string{"--store", "firestore", "--gcp-project", project}, nil,
		func(s *stack) { s.tcpOpts = "?reuseport=true" })
	b := twinStack(t, a)
	mustDocker(t, b.direct, "pull", "busybox")
	base := strings.TrimSpace(mustDocker(t, b.direct, "image", "inspect", "--format", "{{.Id}}", "busybox"))
	mustDocker(t, b.direct, "tag", "busybox", "moving:latest")
	imageOf := func(ref string) string {
		t.Helper()
		id := strings.TrimSpace(mustDocker(t, a.direct, "create", "--pull", "never", ref, "true"))
		defer docker(t, a.direct, "rm", id)
		return strings.TrimSpace(mustDocker(t, a.direct, "inspect", "--format", "{{.Image}}", id))
	}
	if got := imageOf("moving"); got != base {
		t.Fatalf("create of moving: image %s, want %s", got, base)
	}
	src := strings.TrimSpace(mustDocker(t, b.direct, "create", "busybox", "true"))
	defer docker(t, b.direct, "rm", src)
	mustDocker(t, b.direct, "commit", src, "moving:latest")
	moved := strings.TrimSpace(mustDocker(t, b.direct, "image", "inspect", "--format", "{{.Id}}", "moving:latest"))
	if moved == base {
		t.Fatalf("commit made no new image")
	}
	if got := imageOf("moving"); got != moved {
		t.Fatalf("create of moving after the other control plane moved it: image %s, want %s", got, moved)
	}
	if ps := strings.Fields(mustDocker(t, a.direct, "ps", "-aq", "--no-trunc")); len(ps) != 1 || ps[0] != src {
		t.Fatalf("containers after the creates: %v, want only %s", ps, src)
	}
	mustDocker(t, b.direct, "rmi", "moving:latest")
	if r := docker(t, a.direct, "create", "--pull", "never", "moving", "true"); r.code == 0 {
		docker(t, a.direct, "rm", strings.TrimSpace(r.stdout))
		t.Fatalf("create of moving after the other control plane removed it succeeded")
	}
}
