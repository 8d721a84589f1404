package functions

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/functions/apiv2/functionspb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sockerless/sockerless/services/internal/gcpsim/lro"
	"github.com/sockerless/sockerless/services/internal/gcpsim/quota"
	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

// Defaults and limits of 2nd gen HTTP functions.
const (
	DefaultTimeoutSeconds = 60
	MaxTimeoutSeconds     = 3600
	DefaultMemory         = "256M"
	DefaultMaxInstances   = 100
)

// Config configures a Server.
type Config struct {
	// Operations is the shared table of long-running operations.
	Operations *lro.Table
	// Services is the Cloud Run API that holds each function's service.
	Services *run.Server
	// Delay is how long create and update operations take (the build);
	// DeleteDelay how long a delete takes.
	Delay, DeleteDelay time.Duration
	// Writes limits the write calls (create, update, delete) per minute
	// and region; nil: no limit.
	Writes *quota.Limiter
	// MaxFunctions bounds the functions of a region; 0: no bound.
	MaxFunctions int
	// UploadURL returns the URL of upload id (served by UploadHandler).
	UploadURL func(id string) string
	// FunctionURL returns a function's invocation URL.
	FunctionURL func(project, location, id string) string
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// Counts are how many calls of each kind the server received.
type Counts struct {
	CreateFunction    int64 `json:"createFunction"`
	UpdateFunction    int64 `json:"updateFunction"`
	DeleteFunction    int64 `json:"deleteFunction"`
	GetFunction       int64 `json:"getFunction"`
	GenerateUploadURL int64 `json:"generateUploadUrl"`
}

// Server implements functionspb.FunctionServiceServer in memory.
type Server struct {
	functionspb.UnimplementedFunctionServiceServer
	cfg     Config
	uploads uploads

	mu  sync.Mutex
	fns map[string]*functionspb.Function

	creates, updates, deletes, gets, uploadURLs atomic.Int64
}

// NewServer returns a FunctionService server without functions.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, uploads: uploads{byID: map[string]*upload{}}, fns: map[string]*functionspb.Function{}}
}

// Counts returns the call counters.
func (s *Server) Counts() Counts {
	return Counts{
		CreateFunction: s.creates.Load(), UpdateFunction: s.updates.Load(), DeleteFunction: s.deletes.Load(),
		GetFunction: s.gets.Load(), GenerateUploadURL: s.uploadURLs.Load(),
	}
}

// StubImage is the image of a function's service until a client replaces
// it: where Google would push the image built from the source.
func StubImage(project, location, id string) string {
	return location + "-docker.pkg.dev/" + project + "/gcf-artifacts/" + id + ":version_1"
}

// IsStub reports whether image is a StubImage; gcpsim builds no source, so
// invoking a revision with a stub image fails.
func IsStub(image string) bool {
	return strings.Contains(image, "-docker.pkg.dev/") && strings.Contains(image, "/gcf-artifacts/")
}

// GenerateUploadUrl returns a URL to PUT a source zip to, and the storage
// source to name in CreateFunction.
func (s *Server) GenerateUploadUrl(_ context.Context, req *functionspb.GenerateUploadUrlRequest) (*functionspb.GenerateUploadUrlResponse, error) {
	loc, err := resname.ParseLocation(req.GetParent(), false)
	if err != nil {
		return nil, err
	}
	s.uploadURLs.Add(1)
	id := resname.RandomHex(16)
	up := &upload{bucket: "gcf-v2-uploads-" + loc.Project + "-" + loc.Location, object: id + ".zip", created: time.Now()}
	s.uploads.add(id, up)
	return &functionspb.GenerateUploadUrlResponse{
		UploadUrl:     s.cfg.UploadURL(id),
		StorageSource: &functionspb.StorageSource{Bucket: up.bucket, Object: up.object},
	}, nil
}

// GenerateDownloadUrl returns a URL to GET a function's source archive.
func (s *Server) GenerateDownloadUrl(_ context.Context, req *functionspb.GenerateDownloadUrlRequest) (*functionspb.GenerateDownloadUrlResponse, error) {
	f, err := s.get(req.GetName())
	if err != nil {
		return nil, err
	}
	src := f.GetBuildConfig().GetSource().GetStorageSource()
	_, id, err := s.uploads.find(src.GetBucket(), src.GetObject())
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	return &functionspb.GenerateDownloadUrlResponse{DownloadUrl: s.cfg.UploadURL(id)}, nil
}

// ListRuntimes lists the runtimes functions may name.
func (s *Server) ListRuntimes(_ context.Context, req *functionspb.ListRuntimesRequest) (*functionspb.ListRuntimesResponse, error) {
	if _, err := resname.ParseLocation(req.GetParent(), false); err != nil {
		return nil, err
	}
	resp := &functionspb.ListRuntimesResponse{}
	for _, r := range runtimes {
		resp.Runtimes = append(resp.Runtimes, &functionspb.ListRuntimesResponse_Runtime{
			Name: r[0], DisplayName: r[1], Stage: functionspb.ListRuntimesResponse_GA,
			Environment: functionspb.Environment_GEN_2,
		})
	}
	return resp, nil
}

var runtimes = [][2]string{
	{"go121", "Go 1.21"}, {"go122", "Go 1.22"}, {"go123", "Go 1.23"}, {"go124", "Go 1.24"},
	{"nodejs20", "Node.js 20"}, {"nodejs22", "Node.js 22"},
	{"python311", "Python 3.11"}, {"python312", "Python 3.12"},
}

func knownRuntime(name string) bool {
	for _, r := range runtimes {
		if r[0] == name {
			return true
		}
	}
	return false
}

// GetFunction returns a function.
func (s *Server) GetFunction(_ context.Context, req *functionspb.GetFunctionRequest) (*functionspb.Function, error) {
	s.gets.Add(1)
	return s.get(req.GetName())
}

func (s *Server) get(name string) (*functionspb.Function, error) {
	loc, id, err := resname.ParseChild(name, "functions")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fns[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Function %s in region %s in project %s does not exist", id, loc.Location, loc.Project)
	}
	return clone(f), nil
}

// ListFunctions lists the functions of a location ("-" for all) by name.
func (s *Server) ListFunctions(_ context.Context, req *functionspb.ListFunctionsRequest) (*functionspb.ListFunctionsResponse, error) {
	loc, err := resname.ParseLocation(req.GetParent(), true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var all []*functionspb.Function
	for name, f := range s.fns {
		if resname.Matches(loc, name) {
			all = append(all, clone(f))
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].GetName() < all[j].GetName() })
	page, next, err := resname.Page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &functionspb.ListFunctionsResponse{Functions: page, NextPageToken: next}, nil
}

// DeleteFunction deletes a function and its service when the returned
// operation completes.
func (s *Server) DeleteFunction(_ context.Context, req *functionspb.DeleteFunctionRequest) (*longrunningpb.Operation, error) {
	loc, _, err := resname.ParseChild(req.GetName(), "functions")
	if err != nil {
		return nil, err
	}
	name := req.GetName()
	if err := s.cfg.Writes.Allow(loc.Project, loc.Location); err != nil {
		return nil, err
	}
	s.mu.Lock()
	f, ok := s.fns[name]
	if ok {
		if f.State == functionspb.Function_DELETING {
			s.mu.Unlock()
			return nil, status.Errorf(codes.FailedPrecondition, "function %s is being deleted", name)
		}
		f.State = functionspb.Function_DELETING
	}
	s.mu.Unlock()
	if !ok {
		_, err := s.get(name) // the NotFound error
		return nil, err
	}
	s.deletes.Add(1)
	start := timestamppb.Now()
	return s.cfg.Operations.Start(lro.Spec{
		Name:     loc.NewOperation(),
		Delay:    s.cfg.DeleteDelay,
		Metadata: s.metadata(name, "delete", functionspb.OperationType_DELETE_FUNCTION, start, nil),
		Finish: func() (proto.Message, error) {
			s.mu.Lock()
			f := s.fns[name]
			delete(s.fns, name)
			s.mu.Unlock()
			if svc := f.GetServiceConfig().GetService(); svc != "" {
				if _, err := s.cfg.Services.DeleteManaged(svc); err != nil && status.Code(err) != codes.NotFound {
					return nil, err
				}
			}
			s.cfg.Logger.Debug("function deleted", "function", name)
			return &emptypb.Empty{}, nil
		},
	})
}

// metadata returns the OperationMetadata function of an operation on name.
func (s *Server) metadata(name, verb string, typ functionspb.OperationType, start *timestamppb.Timestamp, request *functionspb.Function) func(bool) proto.Message {
	return func(done bool) proto.Message {
		m := &functionspb.OperationMetadata{
			CreateTime: start, Target: name, Verb: verb, ApiVersion: "v2", OperationType: typ,
		}
		if request != nil {
			if a, err := anypb.New(request); err == nil {
				m.RequestResource = a
			}
		}
		st := functionspb.Stage_IN_PROGRESS
		if done {
			m.EndTime = timestamppb.Now()
			st = functionspb.Stage_COMPLETE
		}
		if typ != functionspb.OperationType_DELETE_FUNCTION {
			m.Stages = []*functionspb.Stage{
				{Name: functionspb.Stage_BUILD, State: st},
				{Name: functionspb.Stage_SERVICE, State: st},
			}
		}
		return m
	}
}

func clone(f *functionspb.Function) *functionspb.Function {
	if f == nil {
		return nil
	}
	return proto.Clone(f).(*functionspb.Function)
}
