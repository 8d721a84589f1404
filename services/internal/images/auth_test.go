package images

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/testimage"
)

// basicRegistry serves a registry wanting user:pw, holding private/app:1.
func basicRegistry(t *testing.T) string {
	t.Helper()
	reg := registry.New(registry.Logger(discard()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := testimage.Busybox(testimage.Options{Files: map[string]string{"/private": "yes\n"}})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/private/app:1", name.Insecure)
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "user", Password: "pw"})); err != nil {
		t.Fatal(err)
	}
	return host
}

func TestLoginChecksCredentialsWithTheRegistry(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	host := basicRegistry(t)
	ctx := context.Background()
	if err := s.Login(ctx, engine.RegistryAuth{Username: "user", Password: "pw", ServerAddress: host}); err != nil {
		t.Fatalf("right password: %v", err)
	}
	err := s.Login(ctx, engine.RegistryAuth{Username: "user", Password: "wrong", ServerAddress: "http://" + host + "/"})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Kind != engine.KindUnauthorized || !strings.Contains(ee.Message, "failed with status: 401 Unauthorized") {
		t.Fatalf("wrong password: %v", err)
	}
	if err := s.Login(ctx, engine.RegistryAuth{Username: "user", Password: "pw", ServerAddress: "127.0.0.1:1"}); !errors.As(err, &ee) || ee.Kind != engine.KindUnavailable {
		t.Fatalf("unreachable registry: %v", err)
	}
}

func TestPrivatePullKeepsTheImageInTheDeploymentRepository(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, f.agent)
	host := basicRegistry(t)
	ref := host + "/private/app:1"
	if _, err := s.Pull(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "may require 'docker login'") {
		t.Fatalf("pull without credentials: %v", err)
	}
	ctx := engine.WithRegistryAuth(context.Background(), engine.RegistryAuth{Username: "user", Password: "pw"})
	img, err := s.Pull(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.Source, f.target+"/") || img.RepoTags[0] != ref {
		t.Fatalf("source %s tags %v", img.Source, img.RepoTags)
	}
	// Later steps run without the client's credentials.
	if _, err := s.Wrap(context.Background(), img); err != nil {
		t.Fatalf("wrap without credentials: %v", err)
	}
	if auth, ok := engine.RegistryAuthFrom(ctx); !ok || strings.Contains(auth.String(), "pw") {
		t.Fatalf("credentials shown: %s", auth)
	}
}
