package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
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
)

// TestMain lets a test run this binary's main in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("FORWARDER_TEST_RUN_MAIN") == "1" {
		os.Args = os.Args[:1] // drop the test flags; configuration comes from the environment
		main()
		return
	}
	os.Exit(m.Run())
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in, network, addr string
		wantErr           bool
	}{
		{"unix:///run/s.sock", "unix", "/run/s.sock", false},
		{"/run/s.sock", "unix", "/run/s.sock", false},
		{"tcp://127.0.0.1:2375", "tcp", "127.0.0.1:2375", false},
		{"http://x", "", "", true},
		{"unix://", "", "", true},
	}
	for _, tt := range tests {
		name := tt.in + " is " + tt.network + " " + tt.addr
		if tt.wantErr {
			name = tt.in + " is refused"
		}
		t.Run(name, func(t *testing.T) {
			n, a, err := parseListen(tt.in)
			if (err != nil) != tt.wantErr || n != tt.network || a != tt.addr {
				t.Fatalf("parseListen = %q %q %v", n, a, err)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		wantListen  string
		wantUp      string
		wantToken   string
		wantErrText []string
	}{
		{
			name:       "environment alone configures it",
			env:        map[string]string{"SOCKERLESS_LISTEN": "/tmp/a.sock", "SOCKERLESS_UPSTREAM": "https://cp.example", "SOCKERLESS_TOKEN": "t1"},
			wantListen: "/tmp/a.sock", wantUp: "https://cp.example", wantToken: "t1",
		},
		{
			name:       "flags win over environment",
			args:       []string{"--listen", "unix:///tmp/b.sock", "--upstream", "http://127.0.0.1:9", "--token", "t2"},
			env:        map[string]string{"SOCKERLESS_LISTEN": "/tmp/a.sock", "SOCKERLESS_UPSTREAM": "https://cp.example", "SOCKERLESS_TOKEN": "t1"},
			wantListen: "unix:///tmp/b.sock", wantUp: "http://127.0.0.1:9", wantToken: "t2",
		},
		{
			name:       "listen defaults to the runtime directory",
			env:        map[string]string{"SOCKERLESS_UPSTREAM": "https://cp.example", "XDG_RUNTIME_DIR": "/run/user/7"},
			wantListen: "unix:///run/user/7/sockerless.sock", wantUp: "https://cp.example",
		},
		{
			name:        "missing upstream is refused naming flag and variable",
			wantErrText: []string{"--upstream", "SOCKERLESS_UPSTREAM"},
		},
		{
			name:        "upstream without scheme is refused",
			args:        []string{"--upstream", "cp.example:443"},
			wantErrText: []string{"--upstream"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if tt.wantErrText != nil {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				for _, s := range tt.wantErrText {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("error %q does not name %s", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.listen != tt.wantListen || cfg.upstream.String() != tt.wantUp || cfg.token != tt.wantToken {
				t.Fatalf("config = %q %q %q", cfg.listen, cfg.upstream, cfg.token)
			}
		})
	}
}

func TestRunWithoutUpstreamExits2(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), nil, env(nil), &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "SOCKERLESS_UPSTREAM") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestRunRefusesSocketInUse(t *testing.T) {
	sock := shortSocketPath(t)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--listen", sock, "--upstream", "http://127.0.0.1:9"}, env(nil), &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "another process") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("live socket was removed: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a process writer and a test reader.
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

func shortSocketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fwdcmd") // unix socket paths are limited in length
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "docker.sock")
}

// TestBinaryServesAndCleansUpOnSIGTERM runs main in a child process
// configured only by environment, over a stale socket file, and checks the
// ready line, the socket's mode, a forwarded request and SIGTERM cleanup.
func TestBinaryServesAndCleansUpOnSIGTERM(t *testing.T) {
	const token = "tok-never-logged"
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "OK")
	}))
	defer upstream.Close()

	sock := shortSocketPath(t)
	// A stale socket: bound, then its process gone.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"FORWARDER_TEST_RUN_MAIN=1",
		"SOCKERLESS_LISTEN=unix://"+sock,
		"SOCKERLESS_UPSTREAM="+upstream.URL,
		"SOCKERLESS_TOKEN="+token,
	)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.Process.Signal(syscall.Signal(0)) == nil {
			_ = cmd.Process.Kill()
		}
	}()

	ready := waitForLine(t, &stderr, "ready", exited)
	var line map[string]any
	if err := json.Unmarshal([]byte(ready), &line); err != nil {
		t.Fatalf("ready line is not JSON: %q", ready)
	}
	if line["message"] != "ready" || line["listen"] != sock || line["severity"] != "INFO" {
		t.Fatalf("ready line %q lacks message/listen/severity", ready)
	}

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != socketMode {
		t.Fatalf("socket mode %v, want socket %o", fi.Mode(), socketMode)
	}

	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := client.Get("http://docker/_ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Fatalf("forwarded request: %d %q", resp.StatusCode, body)
	}
	client.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("forwarder did not exit within 15s of SIGTERM")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
	if strings.Contains(stderr.String(), token) {
		t.Fatalf("the token appears in the log:\n%s", stderr.String())
	}
}

// waitForLine waits for a log line containing s.
func waitForLine(t *testing.T, out *syncBuffer, s string, exited <-chan error) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				return sc.Text()
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("forwarder exited (%v) before logging %q:\n%s", err, s, out.String())
		case <-deadline:
			t.Fatalf("no %q line within 10s:\n%s", s, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestUsageNeverShowsTheToken(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--help"}, env(map[string]string{"SOCKERLESS_TOKEN": "hunter2-token"}), &stderr)
	if code != 0 || !strings.Contains(stderr.String(), "-upstream") {
		t.Fatalf("exit %d, usage %q", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "hunter2-token") {
		t.Fatalf("usage shows the token:\n%s", stderr.String())
	}
}
