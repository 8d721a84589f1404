// Package fsemu starts the Cloud Firestore emulator for tests
// (`gcloud emulators firestore start`), so the Firestore store and the
// control plane run against the real wire protocol without a project.
//
// Tests use Start (one emulator per test, or none if
// FIRESTORE_EMULATOR_HOST is already set); a package whose tests all need
// it calls Main from TestMain to share one emulator. Without gcloud, its
// emulator component or java, Start skips the test.
package fsemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvHost is the variable the Firestore client reads to use an emulator.
const EnvHost = "FIRESTORE_EMULATOR_HOST"

// ErrNotInstalled means gcloud, the emulator component or java is missing.
var ErrNotInstalled = errors.New("firestore emulator not installed")

// startTimeout bounds how long the emulator may take to answer.
const startTimeout = 90 * time.Second

// Emulator is a running emulator process group.
type Emulator struct {
	// Host is "127.0.0.1:port", the value for FIRESTORE_EMULATOR_HOST.
	Host string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	once sync.Once
}

// findGcloud returns the gcloud binary, or ErrNotInstalled if gcloud, the
// emulator component or java is missing.
func findGcloud() (string, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		gcloud = "/usr/lib/google-cloud-sdk/bin/gcloud"
		if _, err := os.Stat(gcloud); err != nil {
			return "", fmt.Errorf("%w: no gcloud on PATH", ErrNotInstalled)
		}
	}
	if _, err := exec.LookPath("java"); err != nil {
		return "", fmt.Errorf("%w: no java on PATH", ErrNotInstalled)
	}
	if real, err := filepath.EvalSymlinks(gcloud); err == nil {
		component := filepath.Join(filepath.Dir(filepath.Dir(real)), "platform", "cloud-firestore-emulator")
		if _, err := os.Stat(component); err != nil {
			return "", fmt.Errorf("%w: no %s (gcloud components install cloud-firestore-emulator)", ErrNotInstalled, component)
		}
	}
	return gcloud, nil
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Launch starts an emulator on a free port in its own process group and
// returns once it answers HTTP. Stop ends it.
func Launch(ctx context.Context) (*Emulator, error) {
	gcloud, err := findGcloud()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(gcloud, "emulators", "firestore", "start", "--host-port="+host, "--quiet")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start firestore emulator: %w", err)
	}
	e := &Emulator{Host: host, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(e.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := client.Get("http://" + host + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return e, nil
			}
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("firestore emulator exited: %s", out.String())
		case <-ctx.Done():
			e.Stop()
			return nil, fmt.Errorf("firestore emulator on %s did not answer: %w; output: %s", host, ctx.Err(), out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop ends the emulator's process group (gcloud, its wrapper script and
// java) and waits for it.
func (e *Emulator) Stop() {
	e.once.Do(func() {
		pgid := e.cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
		}
		// java may outlive gcloud's exit: end the whole group regardless.
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-e.done
	})
}

// Output returns what the emulator printed so far.
func (e *Emulator) Output() string { return e.out.String() }

// Renice sets the niceness of the emulator's processes (every thread of
// its process group) to n. A benchmark that models a Firestore running on
// Google's machines lowers it, so that the emulator's own CPU (100 ms and
// more per docker run on a 2-core machine) does not slow down the stack
// it measures, as Google's Firestore would not.
func (e *Emulator) Renice(n int) error {
	if err := syscall.Setpriority(syscall.PRIO_PGRP, e.cmd.Process.Pid, n); err != nil {
		return fmt.Errorf("renice the firestore emulator: %w", err)
	}
	return nil
}

// Pids lists the emulator's processes: its process group (gcloud, its
// wrapper script and java), for a benchmark that counts the CPU the
// emulator spends on the machine it measures.
func (e *Emulator) Pids() ([]int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// After the command's closing parenthesis: state, ppid, pgrp.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(e.cmd.Process.Pid) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Start returns the emulator host for t: FIRESTORE_EMULATOR_HOST if set,
// else that of an emulator it launches, stops in t.Cleanup, and sets
// FIRESTORE_EMULATOR_HOST to (t.Setenv, so not in parallel tests). It
// skips t if the emulator is not installed.
func Start(t testing.TB) string {
	t.Helper()
	if host := os.Getenv(EnvHost); host != "" {
		return host
	}
	e, err := Launch(context.Background())
	if errors.Is(err, ErrNotInstalled) {
		t.Skipf("skipping: needs the Firestore emulator: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	t.Setenv(EnvHost, e.Host)
	return e.Host
}

// Main runs a test binary with one shared emulator: unless
// FIRESTORE_EMULATOR_HOST is set, it launches one, sets the variable for
// the run and stops the emulator afterwards. Use it as
// os.Exit(fsemu.Main(m)). If the emulator is missing or fails, the tests
// still run and Start skips (or fails) each of them.
func Main(m *testing.M) int {
	if os.Getenv(EnvHost) != "" {
		return m.Run()
	}
	e, err := Launch(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsemu: %v\n", err)
		return m.Run()
	}
	defer e.Stop()
	os.Setenv(EnvHost, e.Host)
	defer os.Unsetenv(EnvHost)
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for the process's writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
