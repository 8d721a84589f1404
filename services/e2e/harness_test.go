package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sockerless/sockerless/services/internal/gcpsim"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// token is the admin token of the test stack.
const token = "e2e-secret-token"

// stack is a running dev control plane, its forwarder and the registry.
type stack struct {
	dir      string
	bin      string
	registry string // host:port of the docker.io mirror
	direct   string // DOCKER_HOST for the dev socket
	fwd      string // DOCKER_HOST for the forwarder
	tcp      string // control plane TCP address
	cp       *proc
	fw       *proc
	cpArgs   []string // extra control plane flags
	cpEnv    []string // extra control plane environment
	fwArgs   []string // extra forwarder flags
	twin     string   // names the second control plane of a state dir ("" for the first)
	tcpOpts  string   // query of the TCP listen URL, e.g. "?reuseport=true"
}

var (
	shared     *stack
	sharedErr  error
	sharedOnce sync.Once
)

// requireStack starts (once) the shared stack, or skips with the reason.
func requireStack(t testing.TB) *stack {
	t.Helper()
	if why := missing(); why != "" {
		t.Skip(why)
	}
	sharedOnce.Do(func() { shared, sharedErr = startStack() })
	if sharedErr != nil {
		t.Fatalf("start stack: %v", sharedErr)
	}
	return shared
}

// missing says what this machine lacks for end-to-end tests.
func missing() string {
	if os.Geteuid() != 0 {
		return "end-to-end tests need root (function instances run under runc)"
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return "end-to-end tests need runc (apt-get install runc)"
	}
	if ok, why := testimage.Available(); !ok {
		return why
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return "end-to-end tests need the docker CLI"
	}
	return ""
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
		if os.Getenv("E2E_KEEP") == "" {
			os.RemoveAll(shared.dir)
		}
	}
	os.Exit(code)
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

// build compiles the four binaries into dir/bin exactly as the README
// says (with cgo on where the machine has a C compiler, the agent is then
// dynamically linked and the wrap brings its loader along).
func build(dir string) (string, error) {
	bin := filepath.Join(dir, "bin")
	cmd := exec.Command("go", "build", "-o", bin+"/", "./services/...", "./agent/...")
	cmd.Dir = repoRoot()
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	// The network tests' server and client, static, for the nettest image.
	for _, prog := range []string{"netserver", "netclient"} {
		cmd = exec.Command("go", "build", "-o", filepath.Join(bin, prog), "./services/e2e/testdata/"+prog)
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", prog, err, out)
		}
	}
	return bin, nil
}

// nettestImage is busybox with /bin/netserver and /bin/netclient
// (services/e2e/testdata).
func nettestImage(bin string) (v1.Image, error) {
	progs := map[string][]byte{}
	for _, prog := range []string{"netserver", "netclient"} {
		b, err := os.ReadFile(filepath.Join(bin, prog))
		if err != nil {
			return nil, err
		}
		progs["/bin/"+prog] = b
	}
	return testimage.Busybox(testimage.Options{Programs: progs})
}

// seedRegistry serves a registry with the test images on 127.0.0.1.
func seedRegistry(bin string) (string, error) {
	srv := httptest.NewServer(registry.New(registry.Logger(nopLogger())))
	host := strings.TrimPrefix(srv.URL, "http://")
	imgs := map[string]v1.Image{}
	bb, err := testimage.Busybox(testimage.Options{})
	if err != nil {
		return "", err
	}
	imgs["library/busybox:latest"] = bb
	imgs["library/busybox:1.36"] = bb
	// reuse differs from busybox (another layer), so it gets its own function.
	reuse, err := testimage.Busybox(testimage.Options{Files: map[string]string{"/reuse": "reuse\n"}})
	if err != nil {
		return "", err
	}
	imgs["library/reuse:latest"] = reuse
	if imgs["library/nettest:latest"], err = nettestImage(bin); err != nil {
		return "", err
	}
	for ref, img := range imgs {
		r, err := name.ParseReference(host+"/"+ref, name.Insecure)
		if err != nil {
			return "", err
		}
		if err := remote.Write(r, img); err != nil {
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
	}
	return host, nil
}

func startStack() (*stack, error) {
	dir, err := os.MkdirTemp("", "sockerless-e2e-")
	if err != nil {
		return nil, err
	}
	s := &stack{dir: dir}
	if s.bin, err = build(dir); err != nil {
		return nil, err
	}
	if s.registry, err = seedRegistry(s.bin); err != nil {
		return nil, err
	}
	return s, s.startProcs()
}

// startProcs starts the stack's control plane and forwarder on fresh
// sockets and a free port.
func (s *stack) startProcs() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if s.tcp == "" {
		s.tcp = fmt.Sprintf("127.0.0.1:%d", port)
	}
	s.direct = "unix://" + filepath.Join(s.dir, "docker"+s.twin+".sock")
	s.fwd = "unix://" + filepath.Join(s.dir, "fwd"+s.twin+".sock")
	if err := s.startControlPlane(); err != nil {
		return err
	}
	// Its bind record (package bindguard) in the stack's directory.
	s.fw, err = startProcEnv(filepath.Join(s.dir, "forwarder"+s.twin+".log"), filepath.Join(s.bin, "forwarder"), []string{"XDG_STATE_HOME=" + s.dir},
		append([]string{"--listen", s.fwd, "--upstream", "http://" + s.tcp, "--token", token}, s.fwArgs...)...)
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	return nil
}

// otherStack starts a second stack with the shared stack's binaries and
// registry and its own state, sockets and gcpsim, with extra control plane
// flags and environment (opts may change more before it starts); the
// test's end stops it.
func otherStack(t testing.TB, args, env []string, opts ...func(*stack)) *stack {
	base := requireStack(t)
	dir, err := os.MkdirTemp("", "sockerless-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{dir: dir, bin: base.bin, registry: base.registry, cpArgs: args, cpEnv: env}
	for _, o := range opts {
		o(s)
	}
	t.Cleanup(func() {
		s.stop()
		if os.Getenv("E2E_KEEP") == "" {
			os.RemoveAll(dir)
		}
	})
	if err := s.startProcs(); err != nil {
		t.Fatal(err)
	}
	return s
}

// twinStack starts a second control plane (and forwarder) on base's state
// directory, store flags and TCP port (base must listen with
// ?reuseport=true): the two share gcpsim, the store and the agents'
// callback address, as two Cloud Run instances of one service do during a
// redeploy. Its own unix sockets and logs carry the suffix "-b".
func twinStack(t *testing.T, base *stack) *stack {
	s := &stack{dir: base.dir, bin: base.bin, registry: base.registry, cpArgs: base.cpArgs, cpEnv: base.cpEnv,
		twin: "-b", tcp: base.tcp, tcpOpts: base.tcpOpts}
	t.Cleanup(func() {
		for _, p := range []*proc{s.fw, s.cp} {
			if p != nil {
				p.stop()
			}
		}
	})
	if err := s.startProcs(); err != nil {
		t.Fatal(err)
	}
	return s
}

// startControlPlane starts (or restarts) the dev control plane on the
// stack's state dir.
func (s *stack) startControlPlane() error {
	args := append([]string{"--dev", "--state-dir", filepath.Join(s.dir, "state"),
		"--listen", s.direct, "--listen", "tcp://" + s.tcp + s.tcpOpts,
		"--registry-mirror", "docker.io=http://" + s.registry,
		"--token", token, "--linger", "2s", "--operation-delay", "200ms"}, s.cpArgs...)
	p, err := startProcEnv(filepath.Join(s.dir, "controlplane"+s.twin+".log"), filepath.Join(s.bin, "controlplane"), s.cpEnv, args...)
	if err != nil {
		return fmt.Errorf("controlplane: %w", err)
	}
	s.cp = p
	return nil
}

func (s *stack) stop() {
	for _, p := range []*proc{s.fw, s.cp} {
		if p != nil {
			p.stop()
		}
	}
	s.stopSim()
}

// crashControlPlane kills the control plane process alone with SIGKILL,
// as a crash does: gcpsim and its instances live on.
func (s *stack) crashControlPlane() {
	_ = s.cp.cmd.Process.Kill()
	<-s.cp.done
}

// stopSim ends the gcpsim that the dev control plane started as its own
// process (it outlives the control plane by design), and its instances.
func (s *stack) stopSim() {
	ep, err := gcpsim.ReadEndpoint(filepath.Join(s.dir, "state", "gcpsim", "endpoint.json"))
	if err != nil || ep.PID <= 0 {
		return
	}
	_ = syscall.Kill(ep.PID, syscall.SIGTERM)
	deadline := time.Now().Add(40 * time.Second)
	for syscall.Kill(ep.PID, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(ep.PID, syscall.SIGKILL)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is a started binary whose log is scanned for "ready".
type proc struct {
	cmd   *exec.Cmd
	log   string
	done  chan struct{}
	ready map[string]any // the JSON "ready" log line
}

func startProc(logPath, bin string, args ...string) (*proc, error) {
	return startProcEnv(logPath, bin, nil, args...)
}

// startProcEnv is startProc with env added to the environment.
func startProcEnv(logPath, bin string, env []string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pw.Close()
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer f.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(f, line)
			if strings.Contains(line, "ready") {
				once.Do(func() {
					_ = json.Unmarshal([]byte(line), &p.ready)
					close(ready)
				})
			}
		}
	}()
	go func() { cmd.Wait(); close(p.done) }()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before ready; log %s:\n%s", filepath.Base(bin), logPath, tail(logPath))
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s not ready in 60s; log:\n%s", filepath.Base(bin), tail(logPath))
	}
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		// A hung drain: SIGQUIT makes a Go program write every goroutine's
		// stack to its log, for the failure report.
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(2 * time.Second):
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// result of one docker CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// docker runs the docker CLI against host with a private config dir.
func docker(t testing.TB, host string, args ...string) result {
	t.Helper()
	return dockerIn(t, host, nil, args...)
}

func dockerIn(t testing.TB, host string, stdin []byte, args ...string) result {
	t.Helper()
	return dockerWithConfig(t, host, dockerConfigDir(t), stdin, args...)
}

var (
	cfgOnce sync.Once
	cfgDir  string
)

func dockerConfigDir(t testing.TB) string {
	cfgOnce.Do(func() {
		cfgDir, _ = os.MkdirTemp("", "docker-config-")
		_ = os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{}`), 0o600)
	})
	return cfgDir
}

// mustDocker runs docker and fails the test on a non-zero exit.
func mustDocker(t testing.TB, host string, args ...string) string {
	t.Helper()
	r := docker(t, host, args...)
	if r.code != 0 {
		t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// inspect decodes docker inspect output of one object.
func inspect(t testing.TB, host, ref string) map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(mustDocker(t, host, "inspect", ref)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v (%d objects)", ref, err, len(out))
	}
	return out[0]
}

// apiRequest makes a raw Engine API request to the control plane's TCP
// listener with the token.
func (s *stack) apiRequest(t testing.TB, method, path string, body []byte, withToken bool) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{}
	if withToken {
		h["Authorization"] = "Bearer " + token
	}
	return s.apiRequestHeaders(t, method, path, body, h)
}

// apiRequestAuth is apiRequest with the Authorization header auth.
func (s *stack) apiRequestAuth(t testing.TB, method, path string, body []byte, auth string) (*http.Response, []byte) {
	t.Helper()
	return s.apiRequestHeaders(t, method, path, body, map[string]string{"Authorization": auth})
}

// apiRequestHeaders is apiRequest with the given headers.
func (s *stack) apiRequestHeaders(t testing.TB, method, path string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.tcp+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

// hosts are the two ways a user reaches Sockerless.
func (s *stack) hosts() []struct{ name, host string } {
	return []struct{ name, host string }{{"direct", s.direct}, {"forwarder", s.fwd}}
}

// simStats reads the in-process gcpsim's counters.
func (s *stack) simStats(t testing.TB) map[string]float64 {
	t.Helper()
	url, _ := s.cp.ready["gcpsim"].(string)
	if url == "" {
		t.Fatalf("control plane ready line names no gcpsim: %v", s.cp.ready)
	}
	resp, err := http.Get(url + "/sim/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
