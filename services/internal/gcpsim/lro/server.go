package lro

import (
	"context"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
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
	page, next, err := resname.Page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &longrunningpb.ListOperationsResponse{Operations: page, NextPageToken: next}, nil
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
