package e2e

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sockerless/sockerless/services/internal/testimage"
)

// privateRegistry serves a registry on 127.0.0.1 that wants HTTP basic
// auth as user with password, holding private/app:1 (busybox with
// /private). It returns its host:port.
func privateRegistry(t *testing.T, user, password string) string {
	t.Helper()
	reg := registry.New(registry.Logger(nopLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := testimage.Busybox(testimage.Options{Files: map[string]string{"/private": "private content\n"}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/private/app:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: user, Password: password})); err != nil {
		t.Fatalf("push the private image: %v", err)
	}
	return host
}

// dockerWithConfig runs the docker CLI against host with its own config
// directory (docker login writes credentials there).
func dockerWithConfig(t *testing.T, host, cfg string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_CONFIG="+cfg, "DOCKER_CLI_HINTS=false")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// TestDockerLoginAndPrivatePull: docker login checks the credentials
// against the registry (a wrong password is refused), a private image
// does not pull without them and pulls and runs with them; the password
// never reaches the control plane's or the forwarder's log. Directly,
// through the forwarder and on the Docker engine alike.
func TestDockerLoginAndPrivatePull(t *testing.T) {
	s := requireStack(t)
	const user = "ci-user"
	password := fmt.Sprintf("pw-%d-secret", time.Now().UnixNano())
	reg := privateRegistry(t, user, password)
	img := reg + "/private/app:1"
	for _, h := range referenceHosts(t, s) {
		t.Run(h.name, func(t *testing.T) {
			cfg := t.TempDir()
			if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{}`), 0o600); err != nil {
				t.Fatal(err)
			}
			d := func(stdin []byte, args ...string) result { return dockerWithConfig(t, h.host, cfg, stdin, args...) }
			t.Cleanup(func() { d(nil, "rmi", "-f", img) })

			r := d([]byte("wrong-"+password+"\n"), "login", "-u", user, "--password-stdin", reg)
			if r.code == 0 || !strings.Contains(r.stderr, "401") && !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
				t.Fatalf("login with a wrong password: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			t.Logf("wrong password: %s", strings.TrimSpace(r.stderr))
			r = d(nil, "pull", img)
			if r.code == 0 {
				t.Fatalf("pull of a private image without login succeeded:\n%s", r.stdout)
			}
			t.Logf("pull without login: %s", strings.TrimSpace(r.stderr))
			r = d([]byte(password+"\n"), "login", "-u", user, "--password-stdin", reg)
			if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
				t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if r = d(nil, "pull", img); r.code != 0 {
				t.Fatalf("pull after login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if r = d(nil, "run", "--rm", img, "cat", "/private"); r.code != 0 || r.stdout != "private content\n" {
				t.Fatalf("run of the private image: exit %d\n%q\n%s", r.code, r.stdout, r.stderr)
			}
			if r = d(nil, "logout", reg); r.code != 0 {
				t.Fatalf("logout: %s", r.stderr)
			}
		})
	}
	for _, log := range []string{"controlplane.log", "forwarder.log"} {
		b, err := os.ReadFile(filepath.Join(s.dir, log))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(password)) || bytes.Contains(b, []byte(base64.StdEncoding.EncodeToString([]byte(user+":"+password)))) {
			t.Fatalf("the password is in %s", log)
		}
	}
}
