package run

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sockerless/sockerless/services/internal/gcpsim/lro"
)

const parent = "projects/p/locations/r"

type harness struct {
	srv     *Server
	table   *lro.Table
	mu      sync.Mutex
	retired []string
}

func newHarness(t *testing.T, delay time.Duration) *harness {
	h := &harness{table: lro.NewTable()}
	t.Cleanup(h.table.Close)
	h.srv = NewServer(Config{Operations: h.table, Delay: delay, Retired: func(r *Revision) {
		h.mu.Lock()
		h.retired = append(h.retired, r.Name)
		h.mu.Unlock()
	}})
	return h
}

// wait returns a function that waits for an operation started by a call
// whose results it takes, and returns its Service response.
func (h *harness) wait(t *testing.T) func(*longrunningpb.Operation, error) *runpb.Service {
	t.Helper()
	return func(op *longrunningpb.Operation, err error) *runpb.Service {
		t.Helper()
		return h.waitOp(t, op, err)
	}
}

func (h *harness) waitOp(t *testing.T, op *longrunningpb.Operation, err error) *runpb.Service {
	t.Helper()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	done, err := h.table.Wait(context.Background(), op.GetName(), 5*time.Second)
	if err != nil || !done.GetDone() {
		t.Fatalf("wait: %v %v", done, err)
	}
	if done.GetError() != nil {
		t.Fatalf("operation failed: %v", done.GetError())
	}
	var svc runpb.Service
	if err := done.GetResponse().UnmarshalTo(&svc); err != nil {
		t.Fatal(err)
	}
	return &svc
}

func template(image string) *runpb.RevisionTemplate {
	return &runpb.RevisionTemplate{Containers: []*runpb.Container{{Image: image}}}
}

func TestCreateServiceValidation(t *testing.T) {
	h := newHarness(t, 0)
	tests := []struct {
		name string
		req  *runpb.CreateServiceRequest
		want codes.Code
	}{
		{"a valid service is created", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "ok", Service: &runpb.Service{Template: template("img")}}, codes.OK},
		{"a bad parent is invalid", &runpb.CreateServiceRequest{Parent: "projects/p", ServiceId: "a", Service: &runpb.Service{Template: template("img")}}, codes.InvalidArgument},
		{"an upper-case id is invalid", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "Bad", Service: &runpb.Service{Template: template("img")}}, codes.InvalidArgument},
		{"a missing template is invalid", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "b", Service: &runpb.Service{}}, codes.InvalidArgument},
		{"a container without image is invalid", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "c", Service: &runpb.Service{Template: template("")}}, codes.InvalidArgument},
		{"a timeout over an hour is invalid", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "d", Service: &runpb.Service{Template: &runpb.RevisionTemplate{
			Containers: []*runpb.Container{{Image: "img"}}, Timeout: durationpb.New(2 * time.Hour)}}}, codes.InvalidArgument},
		{"PORT in env is reserved", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "e", Service: &runpb.Service{Template: &runpb.RevisionTemplate{
			Containers: []*runpb.Container{{Image: "img", Env: []*runpb.EnvVar{{Name: "PORT", Values: &runpb.EnvVar_Value{Value: "1"}}}}}}}}, codes.InvalidArgument},
		{"an existing id conflicts", &runpb.CreateServiceRequest{Parent: parent, ServiceId: "ok", Service: &runpb.Service{Template: template("img")}}, codes.AlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.srv.CreateService(context.Background(), tc.req)
			if status.Code(err) != tc.want {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("defaults fill the revision", func(t *testing.T) {
		rev, err := h.srv.Serving(parent + "/services/ok")
		if err != nil {
			t.Fatal(err)
		}
		if rev.Timeout != DefaultTimeout || rev.Concurrency != DefaultConcurrency || rev.MaxInstances != DefaultMaxInstances || rev.ServiceID != "ok" {
			t.Errorf("revision = %+v", rev)
		}
	})
}

func TestUpdateServiceRevisions(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, 50*time.Millisecond)
	op, err := h.srv.CreateService(ctx, &runpb.CreateServiceRequest{Parent: parent, ServiceId: "web", Service: &runpb.Service{Template: template("img:1")}})
	if _, err := h.srv.Serving(parent + "/services/web"); status.Code(err) != codes.Unavailable {
		t.Errorf("Serving before the create completes = %v, want Unavailable", err)
	}
	svc := h.waitOp(t, op, err)
	first := svc.GetLatestReadyRevision()

	t.Run("a new image makes a revision that serves once the operation completes", func(t *testing.T) {
		svc.Template.Containers[0].Image = "img:2"
		op, err := h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		if rev, _ := h.srv.Serving(svc.GetName()); rev.Image != "img:1" {
			t.Errorf("serving %s during the update, want the old image", rev.Image)
		}
		got := h.waitOp(t, op, nil)
		if got.GetLatestReadyRevision() == first || got.GetReconciling() || got.GetGeneration() != 2 {
			t.Errorf("after update: ready %s (was %s), reconciling %v, generation %d", got.GetLatestReadyRevision(), first, got.GetReconciling(), got.GetGeneration())
		}
		if rev, _ := h.srv.Serving(svc.GetName()); rev.Image != "img:2" {
			t.Errorf("serving %s, want img:2", rev.Image)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.retired) != 1 || parent+"/services/web/revisions/"+h.retired[0] != first {
			t.Errorf("retired = %v, want [%s]", h.retired, first)
		}
		svc = got
	})
	t.Run("a stale etag is refused", func(t *testing.T) {
		stale := svc
		stale.Etag = `"1-old"`
		if _, err := h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: stale}); status.Code(err) != codes.Aborted {
			t.Errorf("err = %v, want Aborted", err)
		}
		svc.Etag = ""
	})
	t.Run("a label change through a mask keeps the revision", func(t *testing.T) {
		in := &runpb.Service{Name: svc.GetName(), Labels: map[string]string{"team": "x"}}
		got := h.wait(t)(h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: in, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels"}}}))
		if got.GetLabels()["team"] != "x" || got.GetLatestReadyRevision() != svc.GetLatestReadyRevision() || got.GetTemplate().GetContainers()[0].GetImage() != "img:2" {
			t.Errorf("after label update: labels %v, revision %s (was %s), image %s", got.GetLabels(), got.GetLatestReadyRevision(), svc.GetLatestReadyRevision(), got.GetTemplate().GetContainers()[0].GetImage())
		}
	})
	t.Run("an unknown mask field is invalid", func(t *testing.T) {
		_, err := h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: svc, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"nope"}}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("err = %v, want InvalidArgument", err)
		}
	})
	t.Run("validate only changes nothing", func(t *testing.T) {
		in := &runpb.Service{Name: svc.GetName(), Template: template("img:3")}
		h.wait(t)(h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: in, ValidateOnly: true}))
		if rev, _ := h.srv.Serving(svc.GetName()); rev.Image != "img:2" {
			t.Errorf("serving %s after validate_only, want img:2", rev.Image)
		}
	})
	t.Run("an update of a missing service is not found unless allowed", func(t *testing.T) {
		in := &runpb.Service{Name: parent + "/services/ghost", Template: template("img")}
		if _, err := h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: in}); status.Code(err) != codes.NotFound {
			t.Errorf("err = %v, want NotFound", err)
		}
		got := h.wait(t)(h.srv.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: in, AllowMissing: true}))
		if got.GetName() != in.GetName() {
			t.Errorf("allow_missing created %q", got.GetName())
		}
	})
	t.Run("delete removes the service and retires its revision", func(t *testing.T) {
		h.wait(t)(h.srv.DeleteService(ctx, &runpb.DeleteServiceRequest{Name: svc.GetName()}))
		if _, err := h.srv.Serving(svc.GetName()); status.Code(err) != codes.NotFound {
			t.Errorf("Serving after delete = %v, want NotFound", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.retired) != 2 {
			t.Errorf("retired = %v, want the serving revision retired too", h.retired)
		}
	})
}

func TestListServices(t *testing.T) {
	h := newHarness(t, 0)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		h.wait(t)(h.srv.CreateService(ctx, &runpb.CreateServiceRequest{Parent: parent, ServiceId: id, Service: &runpb.Service{Template: template("img")}}))
		time.Sleep(2 * time.Millisecond)
	}
	h.wait(t)(h.srv.CreateService(ctx, &runpb.CreateServiceRequest{Parent: "projects/p/locations/other", ServiceId: "z", Service: &runpb.Service{Template: template("img")}}))
	var names []string
	token := ""
	for {
		resp, err := h.srv.ListServices(ctx, &runpb.ListServicesRequest{Parent: parent, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.GetServices() {
			names = append(names, s.GetName()[len(parent)+len("/services/"):])
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(names) != 3 || names[0] != "c" || names[2] != "a" {
		t.Errorf("listed %v, want [c b a] (newest first, this location only)", names)
	}
	all, err := h.srv.ListServices(ctx, &runpb.ListServicesRequest{Parent: "projects/p/locations/-"})
	if err != nil || len(all.GetServices()) != 4 {
		t.Errorf("wildcard location listed %d, %v; want 4", len(all.GetServices()), err)
	}
}
