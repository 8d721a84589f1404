package gcf_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/functions/gcf"
	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

// startSim runs gcpsim in-process: real gRPC and HTTP over loopback.
func startSim(t *testing.T) *gcpsim.Server {
	t.Helper()
	srv, err := gcpsim.Start(context.Background(), gcpsim.Config{
		StateDir: t.TempDir(), OperationDelay: 50 * time.Millisecond,
		QueueTimeout: time.Second, StopGrace: time.Second,
	})
	if err != nil {
		t.Fatalf("start gcpsim: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close gcpsim: %v", err)
		}
	})
	return srv
}

func newDriver(t *testing.T, srv *gcpsim.Server, timeoutSeconds int) *gcf.Driver {
	t.Helper()
	d, err := gcf.New(context.Background(), gcf.Config{
		Project: "proj", Region: "europe-west1", Endpoint: srv.GRPCAddr(),
		MaxInstances: 3, TimeoutSeconds: timeoutSeconds, PollInterval: 20 * time.Millisecond,
		Env: map[string]string{"SOCKERLESS_X": "1"},
	})
	if err != nil {
		t.Fatalf("gcf.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func getService(t *testing.T, srv *gcpsim.Server, name string) *runpb.Service {
	t.Helper()
	rc, err := run.NewServicesClient(context.Background(), srv.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	svc, err := rc.GetService(context.Background(), &runpb.GetServiceRequest{Name: name})
	if err != nil {
		t.Fatalf("GetService %s: %v", name, err)
	}
	return svc
}

func TestCreateAndDelete(t *testing.T) {
	srv := startSim(t)
	d := newDriver(t, srv, 0)
	ctx := context.Background()
	image := srv.RegistryHost() + "/sockerless/wrapped:aaa"

	url, err := d.Create(ctx, "fn-a", image)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Run("create returns the function URL", func(t *testing.T) {
		if want := srv.HTTPURL() + "/functions/proj/europe-west1/fn-a"; url != want {
			t.Errorf("url = %q, want %q", url, want)
		}
	})
	t.Run("the service runs the image with one request per instance", func(t *testing.T) {
		svc := getService(t, srv, "projects/proj/locations/europe-west1/services/fn-a")
		tmpl := svc.GetTemplate()
		c := tmpl.GetContainers()[0]
		if c.GetImage() != image {
			t.Errorf("image = %q, want %q", c.GetImage(), image)
		}
		if tmpl.GetMaxInstanceRequestConcurrency() != 1 || tmpl.GetTimeout().AsDuration() != time.Hour || tmpl.GetScaling().GetMaxInstanceCount() != 3 {
			t.Errorf("concurrency %d, timeout %s, max instances %d; want 1, 1h, 3",
				tmpl.GetMaxInstanceRequestConcurrency(), tmpl.GetTimeout().AsDuration(), tmpl.GetScaling().GetMaxInstanceCount())
		}
		found := false
		for _, e := range c.GetEnv() {
			found = found || (e.GetName() == "SOCKERLESS_X" && e.GetValue() == "1")
		}
		if !found {
			t.Errorf("env = %v, want SOCKERLESS_X=1", c.GetEnv())
		}
	})
	t.Run("a second name makes a second function", func(t *testing.T) {
		url2, err := d.Create(ctx, "fn-b", image)
		if err != nil {
			t.Fatalf("Create fn-b: %v", err)
		}
		if url2 == url {
			t.Errorf("both functions have URL %s", url)
		}
		if st := srv.Stats(); st.CreateFunction != 2 || st.UpdateService != 2 {
			t.Errorf("stats = %+v, want 2 CreateFunction and 2 UpdateService", st)
		}
	})
	t.Run("an existing function is reused and only its image changes", func(t *testing.T) {
		image2 := srv.RegistryHost() + "/sockerless/wrapped:bbb"
		url3, err := d.Create(ctx, "fn-a", image2)
		if err != nil {
			t.Fatalf("Create again: %v", err)
		}
		if url3 != url {
			t.Errorf("url = %q, want %q", url3, url)
		}
		if got := getService(t, srv, "projects/proj/locations/europe-west1/services/fn-a").GetTemplate().GetContainers()[0].GetImage(); got != image2 {
			t.Errorf("image = %q, want %q", got, image2)
		}
		if st := srv.Stats(); st.CreateFunction != 2 || st.UpdateService != 3 {
			t.Errorf("stats = %+v, want still 2 CreateFunction and 3 UpdateService", st)
		}
	})
	t.Run("delete removes the function and is idempotent", func(t *testing.T) {
		if err := d.Delete(ctx, "fn-b"); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := d.Delete(ctx, "fn-b"); err != nil {
			t.Errorf("second Delete: %v", err)
		}
		resp, err := http.Get(srv.HTTPURL() + "/functions/proj/europe-west1/fn-b/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("deleted function URL answers %d, want 404", resp.StatusCode)
		}
	})
	t.Run("an invalid name is refused", func(t *testing.T) {
		if _, err := d.Create(ctx, "Bad_Name", image); err == nil {
			t.Error("Create with an invalid name succeeded")
		}
	})
}

func TestInvokeStatuses(t *testing.T) {
	srv := startSim(t)
	d := newDriver(t, srv, 0)
	ctx := context.Background()
	inv := proto.Invocation{ContainerID: "c1", Secret: "s3cret", CallbackURL: "ws://127.0.0.1:1/agent", LingerSeconds: 5}

	var got proto.Invocation
	var gotCT, gotAuth string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotCT, gotAuth = r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusOK)
	}))
	defer ok.Close()
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Rate exceeded.", http.StatusTooManyRequests)
	}))
	defer busy.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "this instance does not serve container x", http.StatusConflict)
	}))
	defer other.Close()
	failed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
	}))
	defer failed.Close()

	tests := []struct {
		name     string
		url      string
		wantCode int // 0: success
		wantKind engine.Kind
		wantBusy bool // try again
	}{
		{"a 2xx answer succeeds", ok.URL, 0, 0, false},
		{"a 429 is unavailable and busy", busy.URL, 429, engine.KindUnavailable, true},
		{"a 409 (another container's instance) is busy", other.URL, 409, engine.KindUnavailable, true},
		{"a 503 is unavailable, not busy", failed.URL, 503, engine.KindUnavailable, false},
		{"an unknown function is a 404", srv.HTTPURL() + "/functions/proj/europe-west1/nope", 404, engine.KindInternal, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := d.Invoke(ctx, tc.url, inv)
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("Invoke: %v", err)
				}
				if !reflect.DeepEqual(got, inv) || gotCT != "application/json" || gotAuth != "" {
					t.Errorf("server got %+v, content type %q, auth %q", got, gotCT, gotAuth)
				}
				return
			}
			var se *gcf.StatusError
			if !errors.As(err, &se) || se.Code != tc.wantCode || engine.KindOf(err) != tc.wantKind {
				t.Fatalf("Invoke error = %v (kind %v), want status %d kind %v", err, engine.KindOf(err), tc.wantCode, tc.wantKind)
			}
			if errors.Is(err, engine.ErrBusy) != tc.wantBusy {
				t.Errorf("errors.Is(%v, ErrBusy) = %v, want %v", err, !tc.wantBusy, tc.wantBusy)
			}
			if strings.Contains(err.Error(), inv.Secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
	t.Run("a cancelled context ends the invocation", func(t *testing.T) {
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
			<-r.Context().Done()
		}))
		defer hang.Close()
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := d.Invoke(cctx, hang.URL, inv); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Invoke = %v, want deadline exceeded", err)
		}
	})
}
