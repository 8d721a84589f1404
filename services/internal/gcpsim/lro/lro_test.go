package lro

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func spec(name string, delay time.Duration, ran *atomic.Int32, err error) Spec {
	return Spec{
		Name:  name,
		Delay: delay,
		Metadata: func(done bool) proto.Message {
			return wrapperspb.Bool(done)
		},
		Finish: func() (proto.Message, error) {
			ran.Add(1)
			if err != nil {
				return nil, err
			}
			return wrapperspb.String("result"), nil
		},
	}
}

func TestOperations(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		delay     time.Duration
		finishErr error
		cancel    bool
		wantCode  codes.Code // of the operation's error; OK: a response
		wantRuns  int32
	}{
		{"completes with the response after the delay", 30 * time.Millisecond, nil, false, codes.OK, 1},
		{"completes at once without a delay", 0, nil, false, codes.OK, 1},
		{"a finish error becomes the operation's error", 10 * time.Millisecond, status.Error(codes.InvalidArgument, "bad build"), false, codes.InvalidArgument, 1},
		{"a plain finish error is reported as unknown", 10 * time.Millisecond, errors.New("boom"), false, codes.Unknown, 1},
		{"cancel ends a pending operation without running it", time.Hour, nil, true, codes.Canceled, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := NewTable()
			defer table.Close()
			srv := NewServer(table)
			var ran atomic.Int32
			first, err := table.Start(spec("projects/p/locations/l/operations/op1", tc.delay, &ran, tc.finishErr))
			if err != nil {
				t.Fatal(err)
			}
			if tc.delay > 0 && first.GetDone() {
				t.Fatal("operation done at start despite a delay")
			}
			if tc.cancel {
				if _, err := srv.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: first.GetName()}); err != nil {
					t.Fatal(err)
				}
			}
			op, err := srv.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: first.GetName(), Timeout: durationpb.New(5 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if !op.GetDone() {
				t.Fatal("operation not done after WaitOperation")
			}
			if got := status.FromProto(op.GetError()).Code(); got != tc.wantCode {
				t.Errorf("error code = %v, want %v", got, tc.wantCode)
			}
			if tc.wantCode == codes.OK {
				var s wrapperspb.StringValue
				if err := op.GetResponse().UnmarshalTo(&s); err != nil || s.GetValue() != "result" {
					t.Errorf("response = %v, %v", op.GetResponse(), err)
				}
				var done wrapperspb.BoolValue
				if err := op.GetMetadata().UnmarshalTo(&done); err != nil || !done.GetValue() {
					t.Errorf("metadata not refreshed at completion: %v, %v", op.GetMetadata(), err)
				}
			}
			if ran.Load() != tc.wantRuns {
				t.Errorf("finish ran %d times, want %d", ran.Load(), tc.wantRuns)
			}
		})
	}
}

func TestTableBookkeeping(t *testing.T) {
	ctx := context.Background()
	table := NewTable()
	srv := NewServer(table)
	var ran atomic.Int32
	for _, n := range []string{"projects/p/locations/a/operations/1", "projects/p/locations/a/operations/2", "projects/p/locations/b/operations/3"} {
		if _, err := table.Start(spec(n, time.Hour, &ran, nil)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a duplicate name is refused", func(t *testing.T) {
		if _, err := table.Start(spec("projects/p/locations/a/operations/1", 0, &ran, nil)); status.Code(err) != codes.AlreadyExists {
			t.Errorf("err = %v, want AlreadyExists", err)
		}
	})
	t.Run("list filters by collection and pages", func(t *testing.T) {
		resp, err := srv.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: "projects/p/locations/a", PageSize: 1})
		if err != nil || len(resp.GetOperations()) != 1 || resp.GetNextPageToken() == "" {
			t.Fatalf("page 1 = %v, %v", resp, err)
		}
		resp, err = srv.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: "projects/p/locations/a", PageSize: 1, PageToken: resp.GetNextPageToken()})
		if err != nil || len(resp.GetOperations()) != 1 || resp.GetOperations()[0].GetName() != "projects/p/locations/a/operations/2" || resp.GetNextPageToken() != "" {
			t.Fatalf("page 2 = %v, %v", resp, err)
		}
	})
	t.Run("wait returns the pending operation when its timeout passes", func(t *testing.T) {
		op, err := srv.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: "projects/p/locations/b/operations/3", Timeout: durationpb.New(20 * time.Millisecond)})
		if err != nil || op.GetDone() {
			t.Errorf("op = %v, %v; want pending", op, err)
		}
	})
	t.Run("delete forgets an operation", func(t *testing.T) {
		if _, err := srv.DeleteOperation(ctx, &longrunningpb.DeleteOperationRequest{Name: "projects/p/locations/b/operations/3"}); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: "projects/p/locations/b/operations/3"}); status.Code(err) != codes.NotFound {
			t.Errorf("get after delete = %v, want NotFound", err)
		}
	})
	t.Run("close stops pending operations and refuses new ones", func(t *testing.T) {
		if table.Pending() != 2 {
			t.Errorf("pending = %d, want 2", table.Pending())
		}
		table.Close()
		if _, err := table.Start(spec("projects/p/locations/a/operations/9", 0, &ran, nil)); status.Code(err) != codes.Unavailable {
			t.Errorf("start after close = %v, want Unavailable", err)
		}
		if ran.Load() != 0 {
			t.Errorf("finish ran %d times", ran.Load())
		}
	})
}
