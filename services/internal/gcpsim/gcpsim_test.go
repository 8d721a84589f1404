package gcpsim_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	functions "cloud.google.com/go/functions/apiv2"
	"cloud.google.com/go/functions/apiv2/functionspb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sockerless/sockerless/services/internal/gcpsim"
)

const parent = "projects/proj/locations/us-central1"

// startSim runs gcpsim in-process on loopback listeners.
func startSim(t testing.TB, cfg gcpsim.Config) *gcpsim.Server {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	srv, err := gcpsim.Start(context.Background(), cfg)
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

func clients(t testing.TB, srv *gcpsim.Server) (*functions.FunctionClient, *run.ServicesClient) {
	t.Helper()
	ctx := context.Background()
	fc, err := functions.NewFunctionClient(ctx, srv.ClientOptions()...)
	if err != nil {
		t.Fatalf("functions client: %v", err)
	}
	rc, err := run.NewServicesClient(ctx, srv.ClientOptions()...)
	if err != nil {
		t.Fatalf("run client: %v", err)
	}
	t.Cleanup(func() { fc.Close(); rc.Close() })
	return fc, rc
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload gets an upload URL and PUTs body to it.
func upload(t *testing.T, fc *functions.FunctionClient, body []byte, contentType string) (*functionspb.StorageSource, int) {
	t.Helper()
	ctx := context.Background()
	u, err := fc.GenerateUploadUrl(ctx, &functionspb.GenerateUploadUrlRequest{Parent: parent})
	if err != nil {
		t.Fatalf("GenerateUploadUrl: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, u.GetUploadUrl(), bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT source: %v", err)
	}
	resp.Body.Close()
	return u.GetStorageSource(), resp.StatusCode
}

func newFunction(src *functionspb.StorageSource) *functionspb.Function {
	return &functionspb.Function{
		BuildConfig: &functionspb.BuildConfig{
			Runtime: "go122", EntryPoint: "Hello",
			Source: &functionspb.Source{Source: &functionspb.Source_StorageSource{StorageSource: src}},
		},
		ServiceConfig: &functionspb.ServiceConfig{
			TimeoutSeconds: 3600, MaxInstanceCount: 5, MaxInstanceRequestConcurrency: 1,
			EnvironmentVariables: map[string]string{"A": "1"},
		},
	}
}

func TestFunctionLifecycleThroughProductionClients(t *testing.T) {
	srv := startSim(t, gcpsim.Config{OperationDelay: 100 * time.Millisecond})
	fc, rc := clients(t, srv)
	ctx := context.Background()

	src, code := upload(t, fc, zipOf(t, map[string]string{"main.go": "package hello"}), "application/zip")
	if code != http.StatusOK {
		t.Fatalf("upload status %d", code)
	}
	op, err := fc.CreateFunction(ctx, &functionspb.CreateFunctionRequest{Parent: parent, FunctionId: "fn-one", Function: newFunction(src)})
	if err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	// Not done yet: the function is deploying.
	f, err := fc.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: parent + "/functions/fn-one"})
	if err != nil {
		t.Fatalf("GetFunction: %v", err)
	}
	if f.GetState() != functionspb.Function_DEPLOYING {
		t.Errorf("state during the operation = %s, want DEPLOYING", f.GetState())
	}
	if _, err := op.Poll(ctx); err != nil || op.Done() {
		t.Errorf("operation done at once (err %v), want pending for the delay", err)
	}
	meta, err := op.Metadata()
	if err != nil || meta.GetTarget() != parent+"/functions/fn-one" || meta.GetVerb() != "create" {
		t.Errorf("metadata = %v, %v", meta, err)
	}
	f, err = op.Wait(ctx)
	if err != nil {
		t.Fatalf("CreateFunction wait: %v", err)
	}
	if f.GetState() != functionspb.Function_ACTIVE {
		t.Errorf("state = %s, want ACTIVE", f.GetState())
	}
	svcName := parent + "/services/fn-one"
	if f.GetServiceConfig().GetService() != svcName {
		t.Errorf("service = %q, want %q", f.GetServiceConfig().GetService(), svcName)
	}
	wantURL := srv.HTTPURL() + "/functions/proj/us-central1/fn-one"
	if f.GetUrl() != wantURL || f.GetServiceConfig().GetUri() != wantURL {
		t.Errorf("url = %q / %q, want %q", f.GetUrl(), f.GetServiceConfig().GetUri(), wantURL)
	}

	svc, err := rc.GetService(ctx, &runpb.GetServiceRequest{Name: svcName})
	if err != nil {
		t.Fatalf("GetService: %v", err)
	}
	c := svc.GetTemplate().GetContainers()[0]
	if !strings.Contains(c.GetImage(), "gcf-artifacts/fn-one") {
		t.Errorf("service image = %q, want the stub", c.GetImage())
	}
	if len(c.GetEnv()) != 1 || c.GetEnv()[0].GetName() != "A" || c.GetEnv()[0].GetValue() != "1" {
		t.Errorf("service env = %v, want A=1", c.GetEnv())
	}
	if got := svc.GetTemplate().GetMaxInstanceRequestConcurrency(); got != 1 {
		t.Errorf("concurrency = %d, want 1", got)
	}

	// The stub answers 500 until the image is replaced.
	resp, err := http.Post(f.GetUrl(), "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "function source not deployed") {
		t.Errorf("stub invocation = %d %q, want 500 function source not deployed", resp.StatusCode, body)
	}

	svc.Template.Containers[0].Image = srv.RegistryHost() + "/sockerless/wrapped:x"
	uop, err := rc.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: svc})
	if err != nil {
		t.Fatalf("UpdateService: %v", err)
	}
	updated, err := uop.Wait(ctx)
	if err != nil {
		t.Fatalf("UpdateService wait: %v", err)
	}
	if got := updated.GetTemplate().GetContainers()[0].GetImage(); got != srv.RegistryHost()+"/sockerless/wrapped:x" {
		t.Errorf("image after update = %q", got)
	}
	if updated.GetLatestReadyRevision() == svc.GetLatestReadyRevision() || updated.GetReconciling() {
		t.Errorf("no new ready revision: %q (was %q), reconciling %v", updated.GetLatestReadyRevision(), svc.GetLatestReadyRevision(), updated.GetReconciling())
	}

	st := srv.Stats()
	if st.CreateFunction != 1 || st.UpdateService != 1 || st.GenerateUploadURL != 1 {
		t.Errorf("stats = %+v, want 1 CreateFunction, 1 UpdateService, 1 GenerateUploadUrl", st)
	}
	resp, err = http.Get(srv.HTTPURL() + "/sim/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	json.NewDecoder(resp.Body).Decode(&js)
	resp.Body.Close()
	if js["createFunction"] != float64(1) || js["updateService"] != float64(1) {
		t.Errorf("/sim/v1/stats = %v", js)
	}

	dop, err := fc.DeleteFunction(ctx, &functionspb.DeleteFunctionRequest{Name: f.GetName()})
	if err != nil {
		t.Fatalf("DeleteFunction: %v", err)
	}
	if err := dop.Wait(ctx); err != nil {
		t.Fatalf("DeleteFunction wait: %v", err)
	}
	if _, err := fc.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: f.GetName()}); status.Code(err) != codes.NotFound {
		t.Errorf("GetFunction after delete: %v, want NotFound", err)
	}
	if _, err := rc.GetService(ctx, &runpb.GetServiceRequest{Name: svcName}); status.Code(err) != codes.NotFound {
		t.Errorf("GetService after delete: %v, want NotFound", err)
	}
}

// testLogger sends gcpsim's logs to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
