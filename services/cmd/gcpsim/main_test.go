package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

func TestServesUntilCancelled(t *testing.T) {
	t.Setenv("SOCKERLESS_OPERATION_DELAY", "250ms")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	epFile := filepath.Join(t.TempDir(), "endpoint.json")
	go func() {
		done <- run(ctx, []string{"--state-dir", t.TempDir(), "--log-level", "debug", "--endpoint-file", epFile}, pw)
		pw.Close()
	}()

	var ready map[string]any
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Bytes())
		}
		if _, ok := line["severity"]; !ok {
			t.Errorf("log line without severity: %s", sc.Bytes())
		}
		if strings.Contains(line["message"].(string), "ready") {
			ready = line
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if ready == nil {
		t.Fatalf("no ready line; run returned %v", <-done)
	}
	resp, err := http.Get(ready["http"].(string) + "/sim/v1/stats")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	var stats map[string]any
	json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if _, ok := stats["createFunction"]; !ok || ready["grpc"] == "" {
		t.Errorf("stats = %v, ready = %v", stats, ready)
	}

	ep, err := gcpsim.ReadEndpoint(epFile)
	if err != nil {
		t.Fatal(err)
	}
	if ep.GRPC != ready["grpc"] || ep.HTTP != ready["http"] || ep.PID != os.Getpid() || !ep.Alive(ctx) {
		t.Errorf("endpoint file %+v does not match the ready line %v or does not answer", ep, ready)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not drain after cancel")
	}
	if _, err := os.Stat(epFile); !os.IsNotExist(err) {
		t.Errorf("endpoint file left after exit: %v", err)
	}
}

func TestEnvTwins(t *testing.T) {
	t.Setenv("SOCKERLESS_LOG_LEVEL", "loud")
	err := run(context.Background(), []string{"--state-dir", t.TempDir()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "log-level") {
		t.Errorf("run with SOCKERLESS_LOG_LEVEL=loud = %v, want a log-level error", err)
	}
	t.Setenv("SOCKERLESS_OPERATION_DELAY", "soon")
	err = run(context.Background(), []string{"--state-dir", t.TempDir()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SOCKERLESS_OPERATION_DELAY") {
		t.Errorf("run with a bad SOCKERLESS_OPERATION_DELAY = %v", err)
	}
}
