package gcf

import (
	"context"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// waitDone calls poll every interval until it reports done or fails, or ctx
// ends. The clients' own Wait backs off to a minute; polling at a fixed
// interval keeps function creation as fast as the platform.
func waitDone(ctx context.Context, interval time.Duration, poll func(context.Context) (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := poll(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// awaitRunOp blocks in Cloud Run's operations.wait (WaitOperation) until
// the operation called name is done, so that a revision is used as soon as
// it serves rather than at the next poll (a second in production). Errors
// are left to the polling that follows, which reports them; an API without
// WaitOperation is polled from then on.
func (d *Driver) awaitRunOp(ctx context.Context, name string) {
	if d.noWaitOp.Load() || d.services.LROClient == nil {
		return
	}
	for ctx.Err() == nil {
		op, err := d.services.LROClient.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: name, Timeout: durationpb.New(time.Minute)})
		if err != nil {
			if status.Code(err) == codes.Unimplemented {
				d.noWaitOp.Store(true)
			}
			return
		}
		if op.GetDone() {
			return
		}
	}
}
