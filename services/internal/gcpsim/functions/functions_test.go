package functions

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/functions/apiv2/functionspb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sockerless/sockerless/services/internal/gcpsim/lro"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

const parent = "projects/p/locations/r"

type harness struct {
	srv    *Server
	run    *run.Server
	table  *lro.Table
	upload *httptest.Server
}

func newHarness(t *testing.T) *harness {
	h := &harness{table: lro.NewTable()}
	t.Cleanup(h.table.Close)
	h.run = run.NewServer(run.Config{Operations: h.table})
	mux := http.NewServeMux()
	h.upload = httptest.NewServer(mux)
	t.Cleanup(h.upload.Close)
	h.srv = NewServer(Config{
		Operations: h.table, Services: h.run, Delay: 10 * time.Millisecond,
		UploadURL:   func(id string) string { return h.upload.URL + "/upload/" + id },
		FunctionURL: func(p, l, id string) string { return "http://fn/" + p + "/" + l + "/" + id },
	})
	mux.Handle("/upload/", h.srv.UploadHandler())
	return h
}

// put uploads body and returns the storage source and the HTTP status.
func (h *harness) put(t *testing.T, body []byte, contentType string) (*functionspb.StorageSource, int) {
	t.Helper()
	u, err := h.srv.GenerateUploadUrl(context.Background(), &functionspb.GenerateUploadUrlRequest{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, u.GetUploadUrl(), bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return u.GetStorageSource(), resp.StatusCode
}

func (h *harness) wait(t *testing.T, op *longrunningpb.Operation) *longrunningpb.Operation {
	t.Helper()
	done, err := h.table.Wait(context.Background(), op.GetName(), 5*time.Second)
	if err != nil || !done.GetDone() {
		t.Fatalf("wait: %v %v", done, err)
	}
	return done
}

func sourceZip(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.js")
	io.WriteString(w, "exports.stub = () => {}")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func fn(src *functionspb.StorageSource) *functionspb.Function {
	return &functionspb.Function{
		BuildConfig: &functionspb.BuildConfig{Runtime: "nodejs20", EntryPoint: "stub",
			Source: &functionspb.Source{Source: &functionspb.Source_StorageSource{StorageSource: src}}},
		ServiceConfig: &functionspb.ServiceConfig{TimeoutSeconds: 3600},
	}
}

func TestCreateFunctionValidation(t *testing.T) {
	h := newHarness(t)
	src, code := h.put(t, sourceZip(t), "application/zip")
	if code != http.StatusOK {
		t.Fatalf("upload = %d", code)
	}
	with := func(edit func(*functionspb.Function)) *functionspb.Function {
		f := fn(src)
		edit(f)
		return f
	}
	tests := []struct {
		name   string
		parent string
		id     string
		f      *functionspb.Function
		want   codes.Code
	}{
		{"a valid function is accepted", parent, "ok", fn(src), codes.OK},
		{"an existing id conflicts", parent, "ok", fn(src), codes.AlreadyExists},
		{"a bad parent is invalid", "projects/p", "a", fn(src), codes.InvalidArgument},
		{"an id with underscores is invalid", parent, "bad_id", fn(src), codes.InvalidArgument},
		{"a missing build config is invalid", parent, "b", with(func(f *functionspb.Function) { f.BuildConfig = nil }), codes.InvalidArgument},
		{"an unknown runtime is invalid", parent, "c", with(func(f *functionspb.Function) { f.BuildConfig.Runtime = "cobol85" }), codes.InvalidArgument},
		{"a missing source is invalid", parent, "d", with(func(f *functionspb.Function) { f.BuildConfig.Source = nil }), codes.InvalidArgument},
		{"a repo source is unimplemented", parent, "e", with(func(f *functionspb.Function) {
			f.BuildConfig.Source = &functionspb.Source{Source: &functionspb.Source_RepoSource{RepoSource: &functionspb.RepoSource{}}}
		}), codes.Unimplemented},
		{"a timeout over an hour is invalid", parent, "f", with(func(f *functionspb.Function) { f.ServiceConfig.TimeoutSeconds = 3601 }), codes.InvalidArgument},
		{"a reserved env var is invalid", parent, "g", with(func(f *functionspb.Function) {
			f.ServiceConfig.EnvironmentVariables = map[string]string{"PORT": "1"}
		}), codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.srv.CreateFunction(context.Background(), &functionspb.CreateFunctionRequest{Parent: tc.parent, FunctionId: tc.id, Function: tc.f})
			if status.Code(err) != tc.want {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if c := h.srv.Counts(); c.CreateFunction != 1 {
		t.Errorf("CreateFunction counted %d, want only the accepted one", c.CreateFunction)
	}
}

func TestBuildFailures(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	notZip, code := h.put(t, []byte("not a zip"), "application/zip")
	if code != http.StatusOK {
		t.Fatalf("upload = %d", code)
	}
	u, err := h.srv.GenerateUploadUrl(ctx, &functionspb.GenerateUploadUrlRequest{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  *functionspb.StorageSource
		msg  string
	}{
		{"a source never uploaded fails the build", u.GetStorageSource(), "never uploaded"},
		{"an unknown object fails the build", &functionspb.StorageSource{Bucket: "b", Object: "o.zip"}, "does not exist"},
		{"a source that is not a zip fails the build", notZip, "not a zip"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "fail-" + string(rune('a'+i))
			op, err := h.srv.CreateFunction(ctx, &functionspb.CreateFunctionRequest{Parent: parent, FunctionId: id, Function: fn(tc.src)})
			if err != nil {
				t.Fatal(err)
			}
			done := h.wait(t, op)
			st := status.FromProto(done.GetError())
			if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("operation error = %v, want InvalidArgument mentioning %q", st, tc.msg)
			}
			f, err := h.srv.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: parent + "/functions/" + id})
			if err != nil || f.GetState() != functionspb.Function_FAILED || len(f.GetStateMessages()) == 0 {
				t.Errorf("function = %v, %v; want FAILED with a message", f, err)
			}
		})
	}
	t.Run("an upload without the zip content type is forbidden", func(t *testing.T) {
		if _, code := h.put(t, sourceZip(t), "text/plain"); code != http.StatusForbidden {
			t.Errorf("status = %d, want 403", code)
		}
	})
}

func TestFunctionUpdateAndListing(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	src, _ := h.put(t, sourceZip(t), "application/zip")
	op, err := h.srv.CreateFunction(ctx, &functionspb.CreateFunctionRequest{Parent: parent, FunctionId: "web", Function: fn(src)})
	if err != nil {
		t.Fatal(err)
	}
	var f functionspb.Function
	if err := h.wait(t, op).GetResponse().UnmarshalTo(&f); err != nil {
		t.Fatal(err)
	}
	svcName := parent + "/services/web"

	t.Run("the function's service runs the stub image", func(t *testing.T) {
		rev, err := h.run.Serving(svcName)
		if err != nil || !IsStub(rev.Image) || rev.Concurrency != 1 || rev.Timeout != time.Hour {
			t.Errorf("revision = %+v, %v", rev, err)
		}
		if f.GetServiceConfig().GetRevision() != rev.Name {
			t.Errorf("function revision %q, service serves %q", f.GetServiceConfig().GetRevision(), rev.Name)
		}
	})
	t.Run("a rebuild replaces an image set through Cloud Run", func(t *testing.T) {
		svc, _ := h.run.GetService(ctx, &runpb.GetServiceRequest{Name: svcName})
		svc.Template.Containers[0].Image = "registry/real:1"
		uop, err := h.run.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		h.wait(t, uop)
		f.ServiceConfig.EnvironmentVariables = map[string]string{"NEW": "1"}
		op, err := h.srv.UpdateFunction(ctx, &functionspb.UpdateFunctionRequest{Function: &f})
		if err != nil {
			t.Fatal(err)
		}
		if done := h.wait(t, op); done.GetError() != nil {
			t.Fatalf("update failed: %v", done.GetError())
		}
		rev, _ := h.run.Serving(svcName)
		if !IsStub(rev.Image) || len(rev.Env) != 1 || rev.Env[0] != "NEW=1" {
			t.Errorf("after rebuild: image %s env %v; want the stub with NEW=1", rev.Image, rev.Env)
		}
	})
	t.Run("list and download", func(t *testing.T) {
		resp, err := h.srv.ListFunctions(ctx, &functionspb.ListFunctionsRequest{Parent: "projects/p/locations/-"})
		if err != nil || len(resp.GetFunctions()) != 1 || resp.GetFunctions()[0].GetName() != parent+"/functions/web" {
			t.Errorf("list = %v, %v", resp, err)
		}
		d, err := h.srv.GenerateDownloadUrl(ctx, &functionspb.GenerateDownloadUrlRequest{Name: parent + "/functions/web"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := http.Get(d.GetDownloadUrl())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !bytes.Equal(body, sourceZip(t)) {
			t.Errorf("download differs from the upload (%d bytes)", len(body))
		}
		rt, err := h.srv.ListRuntimes(ctx, &functionspb.ListRuntimesRequest{Parent: parent})
		if err != nil || len(rt.GetRuntimes()) == 0 {
			t.Errorf("runtimes = %v, %v", rt, err)
		}
	})
	t.Run("delete removes the function and its service", func(t *testing.T) {
		op, err := h.srv.DeleteFunction(ctx, &functionspb.DeleteFunctionRequest{Name: parent + "/functions/web"})
		if err != nil {
			t.Fatal(err)
		}
		h.wait(t, op)
		if _, err := h.run.Serving(svcName); status.Code(err) != codes.NotFound {
			t.Errorf("service after delete: %v", err)
		}
		if _, err := h.srv.DeleteFunction(ctx, &functionspb.DeleteFunctionRequest{Name: parent + "/functions/web"}); status.Code(err) != codes.NotFound {
			t.Errorf("second delete: %v, want NotFound", err)
		}
	})
}
