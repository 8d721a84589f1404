package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/logging/logadmin"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sockerless/sockerless/services/internal/audit"
	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

// TestAuditTrailInCloudLogging: mutating calls through the unix socket and
// the TCP listener and a failed authentication are written to Cloud
// Logging (gcpsim's, read back with the production logadmin client) with
// who, what, which object and the result, and no secret: not the token,
// not the failed attempt's token, not X-Registry-Auth, not an environment
// value. The --dev control plane writes them to its own log too.
func TestAuditTrailInCloudLogging(t *testing.T) {
	s := requireStack(t)
	const (
		envSecret   = "env-value-s3cr3t-7781"
		wrongToken  = "wrong-token-s3cr3t-5521"
		registryPwd = "registry-pw-s3cr3t-9904"
	)
	stamp := time.Now().Format("150405.000")
	stamp = strings.ReplaceAll(stamp, ".", "")
	local := "audit-local-" + stamp
	remote := "audit-tcp-" + stamp

	mustDocker(t, s.direct, "create", "--name", local, "-e", "SECRET="+envSecret, "busybox", "true")
	mustDocker(t, s.direct, "rm", local)
	resp, b := s.apiRequest(t, "POST", "/v1.41/containers/create?name="+remote, []byte(`{"Image":"busybox","Env":["SECRET=`+envSecret+`"]}`), true)
	if resp.StatusCode != 201 {
		t.Fatalf("create over TCP: %d %s", resp.StatusCode, b)
	}
	resp, _ = s.apiRequest(t, "DELETE", "/v1.41/containers/"+remote, nil, true)
	if resp.StatusCode != 204 {
		t.Fatalf("delete over TCP: %d", resp.StatusCode)
	}
	authJSON, _ := json.Marshal(map[string]string{"username": "u", "password": registryPwd})
	mustDockerHeaderPull(t, s, base64.URLEncoding.EncodeToString(authJSON))
	resp, _ = s.apiRequestAuth(t, "POST", "/v1.41/containers/create?name=never-"+stamp, []byte(`{"Image":"busybox"}`), "Bearer "+wrongToken)
	if resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}

	client := auditClient(t, s)
	type want struct{ who, action, object, method string }
	wants := []want{
		{"local", "containers.create", local, "POST"},
		{"local", "containers.delete", local, "DELETE"},
		{"admin", "containers.create", remote, "POST"},
		{"admin", "containers.delete", remote, "DELETE"},
		{"admin", "images.pull", "busybox:latest", "POST"},
		{"", "auth.failed", "", "POST"},
	}
	var records []map[string]any
	var raw []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		records, raw = listAudit(t, client)
		missing := ""
		for _, w := range wants {
			if !hasRecord(records, w.who, w.action, w.object, w.method, stamp) {
				missing = w.who + " " + w.action + " " + w.object
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record %q among %d:\n%s", missing, len(raw), strings.Join(raw, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, r := range records {
		if r["action"] == "containers.create" && r["object"] == remote && r["status"] != float64(201) {
			t.Fatalf("create's status %v, want 201", r["status"])
		}
		if r["action"] == "auth.failed" && (r["status"] != float64(401) || r["reason"] == nil) {
			t.Fatalf("failed authentication record %v", r)
		}
	}
	for _, line := range raw {
		for _, secret := range []string{token, wrongToken, envSecret, registryPwd, base64.URLEncoding.EncodeToString(authJSON)} {
			if strings.Contains(line, secret) {
				t.Fatalf("audit record holds a secret: %s", line)
			}
		}
	}
	logText, _ := os.ReadFile(s.cp.log)
	found := false
	for _, line := range strings.Split(string(logText), "\n") {
		found = found || strings.Contains(line, `"audit"`) && strings.Contains(line, `"action":"containers.create"`) && strings.Contains(line, remote)
	}
	if !found {
		t.Fatal("the --dev control plane's log has no audit line of the create over TCP")
	}
	for _, secret := range []string{token, wrongToken, envSecret, registryPwd} {
		if strings.Contains(string(logText), secret) {
			t.Fatalf("the control plane's log holds the secret %q", secret)
		}
	}
}

// mustDockerHeaderPull pulls busybox with an X-Registry-Auth header.
func mustDockerHeaderPull(t *testing.T, s *stack, regAuth string) {
	t.Helper()
	resp, b := s.apiRequestHeaders(t, "POST", "/v1.41/images/create?fromImage=busybox&tag=latest", nil,
		map[string]string{"Authorization": "Bearer " + token, "X-Registry-Auth": regAuth})
	if resp.StatusCode != 200 {
		t.Fatalf("pull: %d %s", resp.StatusCode, b)
	}
}

// auditClient reads the stack's gcpsim Cloud Logging with the production
// client.
func auditClient(t *testing.T, s *stack) *logadmin.Client {
	t.Helper()
	ep, err := gcpsim.ReadEndpoint(filepath.Join(s.dir, "state", "gcpsim", "endpoint.json"))
	if err != nil {
		t.Fatalf("gcpsim endpoint: %v", err)
	}
	c, err := logadmin.NewClient(context.Background(), "projects/sockerless-dev", option.WithEndpoint(ep.GRPC),
		option.WithoutAuthentication(), option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listAudit returns the audit log's payloads, decoded and as JSON text.
func listAudit(t *testing.T, c *logadmin.Client) ([]map[string]any, []string) {
	t.Helper()
	it := c.Entries(context.Background(), logadmin.Filter(`logName="projects/sockerless-dev/logs/`+audit.LogID+`"`))
	var out []map[string]any
	var raw []string
	for {
		e, err := it.Next()
		if err == iterator.Done {
			return out, raw
		}
		if err != nil {
			t.Fatalf("list audit entries: %v", err)
		}
		b, _ := json.Marshal(e.Payload)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		out = append(out, m)
		raw = append(raw, string(b))
	}
}

// hasRecord finds a record; the failed authentication's object is none,
// so it is matched by its path's stamp.
func hasRecord(rs []map[string]any, who, action, object, method, stamp string) bool {
	for _, r := range rs {
		if r["action"] != action || r["method"] != method {
			continue
		}
		if rw, _ := r["who"].(string); rw != who {
			continue
		}
		if object != "" && r["object"] != object {
			continue
		}
		if action == "auth.failed" && !strings.Contains(r["path"].(string), "containers/create") {
			continue
		}
		return true
	}
	return false
}
