// Package lro is gcpsim's table of long-running operations
// (google.longrunning), shared by the simulated Cloud Functions and Cloud Run
// APIs, and its gRPC Operations server. An operation completes after a
// configurable delay by running its finish function, as Google's
// create/update/delete operations complete after a build or deploy.
package lro

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Spec describes an operation to start.
type Spec struct {
	// Name is the operation's full resource name
	// ("projects/P/locations/L/operations/ID").
	Name string
	// Delay is how long the operation runs before Finish is called.
	Delay time.Duration
	// Metadata returns the operation's metadata; it is called at start
	// (done=false) and at completion (done=true). May be nil.
	Metadata func(done bool) proto.Message
	// Finish does the operation's work when the delay has passed. Its result
	// becomes the operation's response; an error (a gRPC status error or any
	// error, reported as Unknown) becomes the operation's error.
	Finish func() (proto.Message, error)
}

type op struct {
	pb    *longrunningpb.Operation
	spec  Spec
	timer *time.Timer
	done  chan struct{}
}

// Table holds every operation. It is safe for concurrent use; Close stops
// the timers of operations still pending.
type Table struct {
	mu     sync.Mutex
	ops    map[string]*op
	order  []string
	closed bool
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{ops: map[string]*op{}}
}

// Start registers an operation and schedules its completion. It returns the
// operation as a client sees it right after the call (done=false, or done
// already if Delay ≤ 0 and Finish ran inline).
func (t *Table) Start(spec Spec) (*longrunningpb.Operation, error) {
	if spec.Name == "" || spec.Finish == nil {
		return nil, status.Error(codes.Internal, "lro: operation needs a name and a finish function")
	}
	pb := &longrunningpb.Operation{Name: spec.Name}
	if spec.Metadata != nil {
		m, err := anypb.New(spec.Metadata(false))
		if err != nil {
			return nil, status.Errorf(codes.Internal, "lro: metadata: %v", err)
		}
		pb.Metadata = m
	}
	o := &op{pb: pb, spec: spec, done: make(chan struct{})}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "lro: shutting down")
	}
	if _, dup := t.ops[spec.Name]; dup {
		t.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "operation %s exists", spec.Name)
	}
	t.ops[spec.Name] = o
	t.order = append(t.order, spec.Name)
	first := proto.Clone(pb).(*longrunningpb.Operation)
	if spec.Delay > 0 {
		o.timer = time.AfterFunc(spec.Delay, func() { t.complete(o) })
	}
	t.mu.Unlock()
	if spec.Delay <= 0 {
		t.complete(o)
		return t.Get(spec.Name)
	}
	return first, nil
}

// complete runs the operation's finish function once and records its result.
func (t *Table) complete(o *op) {
	t.mu.Lock()
	if t.closed || o.pb.Done {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()

	resp, err := o.spec.Finish()
	var meta proto.Message
	if o.spec.Metadata != nil {
		meta = o.spec.Metadata(true)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	if o.pb.Done {
		return
	}
	t.finishLocked(o, resp, meta, err)
}

func (t *Table) finishLocked(o *op, resp, meta proto.Message, err error) {
	if meta != nil {
		if m, merr := anypb.New(meta); merr == nil {
			o.pb.Metadata = m
		}
	}
	if err == nil && resp != nil {
		a, aerr := anypb.New(resp)
		if aerr != nil {
			err = status.Errorf(codes.Internal, "encode response: %v", aerr)
		} else {
			o.pb.Result = &longrunningpb.Operation_Response{Response: a}
		}
	}
	if err != nil {
		o.pb.Result = &longrunningpb.Operation_Error{Error: status.Convert(err).Proto()}
	}
	o.pb.Done = true
	close(o.done)
}

// Get returns a copy of the named operation, or a NotFound status error.
func (t *Table) Get(name string) (*longrunningpb.Operation, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.ops[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %q not found", name)
	}
	return proto.Clone(o.pb).(*longrunningpb.Operation), nil
}

// Wait blocks until the named operation is done, timeout passes (≤ 0: no
// limit besides ctx) or ctx ends, and returns the operation as it then is.
func (t *Table) Wait(ctx context.Context, name string, timeout time.Duration) (*longrunningpb.Operation, error) {
	t.mu.Lock()
	o, ok := t.ops[name]
	t.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %q not found", name)
	}
	var expired <-chan time.Time
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		defer tm.Stop()
		expired = tm.C
	}
	select {
	case <-o.done:
	case <-expired:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return t.Get(name)
}

// Cancel ends a pending operation with a Canceled error without running its
// finish function. Cancelling a finished operation does nothing.
func (t *Table) Cancel(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.ops[name]
	if !ok {
		return status.Errorf(codes.NotFound, "operation %q not found", name)
	}
	if o.pb.Done {
		return nil
	}
	if o.timer != nil && !o.timer.Stop() {
		// Finish is already running; let it record its result.
		return nil
	}
	t.finishLocked(o, nil, nil, status.Error(codes.Canceled, "operation cancelled"))
	return nil
}

// Delete forgets the named operation. A pending operation still completes
// (its effects happen) but can no longer be read.
func (t *Table) Delete(name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ops[name]; !ok {
		return status.Errorf(codes.NotFound, "operation %q not found", name)
	}
	delete(t.ops, name)
	t.order = slices.DeleteFunc(t.order, func(n string) bool { return n == name })
	return nil
}

// List returns copies of the operations whose name starts with prefix+"/",
// oldest first.
func (t *Table) List(prefix string) []*longrunningpb.Operation {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*longrunningpb.Operation
	for _, n := range t.order {
		if prefix == "" || strings.HasPrefix(n, strings.TrimSuffix(prefix, "/")+"/") {
			out = append(out, proto.Clone(t.ops[n].pb).(*longrunningpb.Operation))
		}
	}
	return out
}

// Close stops pending operations: they never complete. Start fails after Close.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, o := range t.ops {
		if o.timer != nil {
			o.timer.Stop()
		}
	}
}

// Pending reports how many operations are not done yet.
func (t *Table) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, o := range t.ops {
		if !o.pb.Done {
			n++
		}
	}
	return n
}
