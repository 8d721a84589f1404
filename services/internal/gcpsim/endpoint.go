package gcpsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Endpoint says where a running gcpsim serves. A gcpsim started with an
// endpoint file writes it there once it serves, so that a control plane
// started later (after a crash, say) finds it and reuses it, with every
// function instance still running, as Google outlives a control plane.
type Endpoint struct {
	// PID is the gcpsim process.
	PID int `json:"pid"`
	// GRPC is the host:port of the Google APIs.
	GRPC string `json:"grpc"`
	// HTTP is the base URL of function URLs, uploads and /sim/v1/.
	HTTP string `json:"http"`
	// Registry is the host:port of its OCI registry.
	Registry string `json:"registry"`
}

// Endpoint returns where s serves.
func (s *Server) Endpoint() Endpoint {
	return Endpoint{PID: os.Getpid(), GRPC: s.GRPCAddr(), HTTP: s.HTTPURL(), Registry: s.RegistryHost()}
}

// WriteEndpoint records e at path, atomically: a reader never sees half a file.
func WriteEndpoint(path string, e Endpoint) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode endpoint: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".endpoint-*")
	if err != nil {
		return fmt.Errorf("write endpoint %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write endpoint %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write endpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write endpoint %s: %w", path, err)
	}
	return nil
}

// ReadEndpoint reads the endpoint file at path.
func ReadEndpoint(path string) (Endpoint, error) {
	var e Endpoint
	data, err := os.ReadFile(path)
	if err != nil {
		return e, fmt.Errorf("read endpoint: %w", err)
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("read endpoint %s: %w", path, err)
	}
	return e, nil
}

// RemoveEndpoint removes the endpoint file at path if it still names
// process pid (a newer gcpsim may have replaced it).
func RemoveEndpoint(path string, pid int) {
	if e, err := ReadEndpoint(path); err == nil && e.PID == pid {
		_ = os.Remove(path)
	}
}

// AllowHostPorts asks the gcpsim at e to let the function instances it
// starts from now on reach ports of the host's loopback.
func (e Endpoint) AllowHostPorts(ctx context.Context, ports []int) error {
	if len(ports) == 0 {
		return nil
	}
	body, err := json.Marshal(HostPorts{Ports: ports})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.HTTP+"/sim/v1/host-ports", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("allow host ports: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("allow host ports: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil // a gcpsim from before instance networks: they share the host's
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("allow host ports: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Alive reports whether a gcpsim answers at e within a second.
func (e Endpoint) Alive(ctx context.Context) bool {
	if e.HTTP == "" || e.GRPC == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.HTTP+"/sim/v1/stats", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
