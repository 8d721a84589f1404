package lro

import (
	"context"
	"strconv"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Server serves the google.longrunning.Operations gRPC API from a Table.
type Server struct {
	longrunningpb.UnimplementedOperationsServer
	table *Table
}

// NewServer returns the Operations server of t.
func NewServer(t *Table) *Server { return &Server{table: t} }

// GetOperation returns the latest state of an operation.
func (s *Server) GetOperation(_ context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	return s.table.Get(req.GetName())
}

// ListOperations lists the operations under req.Name (a collection such as
// "projects/P/locations/L" or ".../operations"). Filter is not supported and
// ignored; page_token is an offset.
func (s *Server) ListOperations(_ context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	prefix := req.GetName()
	all := s.table.List(prefix)
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(all) {
			return nil, status.Errorf(codes.InvalidArgument, "invalid page token %q", tok)
		}
		start = n
	}
	size := int(req.GetPageSize())
	if size <= 0 || size > 1000 {
		size = 1000
	}
	end := min(start+size, len(all))
	resp := &longrunningpb.ListOperationsResponse{Operations: all[start:end]}
	if end < len(all) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// DeleteOperation forgets an operation.
func (s *Server) DeleteOperation(_ context.Context, req *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	if err := s.table.Delete(req.GetName()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// CancelOperation ends a pending operation with a Canceled error.
func (s *Server) CancelOperation(_ context.Context, req *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	if err := s.table.Cancel(req.GetName()); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// WaitOperation blocks until the operation is done or req.Timeout passes
// (default and maximum: one minute, like Google), then returns it.
func (s *Server) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	const maxWait = time.Minute
	timeout := req.GetTimeout().AsDuration()
	if timeout <= 0 || timeout > maxWait {
		timeout = maxWait
	}
	return s.table.Wait(ctx, req.GetName(), timeout)
}
