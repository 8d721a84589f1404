package quota

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestLimiterRefusesAsGoogleWithinTheWindowOnly(t *testing.T) {
	l := &Limiter{Service: "cloudfunctions.googleapis.com", Limit: 2, Window: 200 * time.Millisecond}
	for i := 0; i < 2; i++ {
		if err := l.Allow("p", "us-central1"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := l.Allow("p", "europe-west1"); err != nil {
		t.Fatalf("another region has its own quota: %v", err)
	}
	err := l.Allow("p", "us-central1")
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third call: %v, want RESOURCE_EXHAUSTED", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.Reason != "RATE_LIMIT_EXCEEDED" || info.Metadata["quota_metric"] != "cloudfunctions.googleapis.com/write_requests" {
		t.Fatalf("details %v", st.Details())
	}
	time.Sleep(250 * time.Millisecond)
	if err := l.Allow("p", "us-central1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestNoLimit(t *testing.T) {
	var l *Limiter
	if err := l.Allow("p", "r"); err != nil {
		t.Fatal(err)
	}
	l2 := &Limiter{}
	for i := 0; i < 100; i++ {
		if err := l2.Allow("p", "r"); err != nil {
			t.Fatal(err)
		}
	}
}
