package run

import (
	"context"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sockerless/sockerless/services/internal/gcpsim/lro"
	"github.com/sockerless/sockerless/services/internal/gcpsim/quota"
	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
)

// Config configures a Server.
type Config struct {
	// Operations is the shared table of long-running operations.
	Operations *lro.Table
	// Delay is how long create, update and delete operations take (a
	// revision's deployment).
	Delay time.Duration
	// Writes limits the write calls per minute and region; nil: none.
	Writes *quota.Limiter
	// URL returns the invocation URL of a service.
	URL func(project, location, serviceID string) string
	// Deploying, if set, is called (without locks held) when a new
	// revision is made, as its deployment starts.
	Deploying func(*Revision)
	// Serving, if set, is called (without locks held) when a revision
	// starts taking traffic: its min instances start.
	Serving func(*Revision)
	// Retired, if set, is called (without locks held) when a revision stops
	// taking traffic: replaced by a newer one or its service deleted.
	Retired func(*Revision)
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// Counts are how many mutating calls the server received.
type Counts struct {
	CreateService int64 `json:"createService"`
	UpdateService int64 `json:"updateService"`
	DeleteService int64 `json:"deleteService"`
}

type entry struct {
	svc       *runpb.Service
	serving   *Revision
	revisions map[string]*Revision
}

// Server implements runpb.ServicesServer in memory.
type Server struct {
	runpb.UnimplementedServicesServer
	cfg Config

	mu       sync.Mutex
	services map[string]*entry

	creates, updates, deletes atomic.Int64
}

// NewServer returns an empty Services server.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.URL == nil {
		cfg.URL = func(p, l, id string) string { return "https://" + id + "-" + l + ".run.app" }
	}
	return &Server{cfg: cfg, services: map[string]*entry{}}
}

// Counts returns the call counters.
func (s *Server) Counts() Counts {
	return Counts{CreateService: s.creates.Load(), UpdateService: s.updates.Load(), DeleteService: s.deletes.Load()}
}

func parseService(name string) (resname.Location, string, error) {
	return resname.ParseChild(name, "services")
}

// outputOnly are the Service fields clients cannot set.
var outputOnly = map[string]bool{
	"name": true, "uid": true, "generation": true, "create_time": true, "update_time": true,
	"delete_time": true, "expire_time": true, "creator": true, "last_modifier": true,
	"observed_generation": true, "terminal_condition": true, "conditions": true,
	"latest_ready_revision": true, "latest_created_revision": true, "traffic_statuses": true,
	"uri": true, "urls": true, "satisfies_pzs": true, "reconciling": true, "etag": true,
}

// GetService returns a service.
func (s *Server) GetService(_ context.Context, req *runpb.GetServiceRequest) (*runpb.Service, error) {
	if _, _, err := parseService(req.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.services[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "Resource '%s' of kind 'SERVICE' in region '%s' in project '%s' does not exist.",
			lastPart(req.GetName()), partAt(req.GetName(), 3), partAt(req.GetName(), 1))
	}
	return clone(e.svc), nil
}

// ListServices lists the services of a location ("-" for all), newest first.
func (s *Server) ListServices(_ context.Context, req *runpb.ListServicesRequest) (*runpb.ListServicesResponse, error) {
	loc, err := resname.ParseLocation(req.GetParent(), true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var all []*runpb.Service
	for name, e := range s.services {
		if resname.Matches(loc, name) {
			all = append(all, clone(e.svc))
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		ti, tj := all[i].GetCreateTime().AsTime(), all[j].GetCreateTime().AsTime()
		if ti.Equal(tj) {
			return all[i].GetName() < all[j].GetName()
		}
		return ti.After(tj)
	})
	page, next, err := resname.Page(all, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &runpb.ListServicesResponse{Services: page, NextPageToken: next}, nil
}

// CreateService creates a service; its first revision takes traffic when
// the returned operation completes.
func (s *Server) CreateService(_ context.Context, req *runpb.CreateServiceRequest) (*longrunningpb.Operation, error) {
	loc, err := resname.ParseLocation(req.GetParent(), false)
	if err != nil {
		return nil, err
	}
	if err := resname.CheckID("service", req.GetServiceId(), 49); err != nil {
		return nil, err
	}
	if err := s.cfg.Writes.Allow(loc.Project, loc.Location); err != nil {
		return nil, err
	}
	in := clone(req.GetService())
	if in == nil {
		in = &runpb.Service{}
	}
	if in.GetName() != "" {
		return nil, status.Error(codes.InvalidArgument, "service.name must be empty; the name comes from parent and service_id")
	}
	in.Name = loc.Child("services", req.GetServiceId())
	if req.GetValidateOnly() {
		if _, err := revisionFrom(in, revisionName(req.GetServiceId(), 1, "val")); err != nil {
			return nil, err
		}
		return s.doneOp(loc, in)
	}
	s.creates.Add(1)
	svc, rev, err := s.insert(in)
	if err != nil {
		return nil, err
	}
	s.deploying(rev)
	return s.startOp(loc, svc.GetName(), func() (proto.Message, error) {
		return s.promote(svc.GetName(), rev, svc.GetGeneration())
	})
}

// CreateManaged creates a ready service at once, without an operation, as
// the Cloud Functions API does for the service underlying a function.
func (s *Server) CreateManaged(svc *runpb.Service) (*runpb.Service, error) {
	svc = clone(svc)
	if _, _, err := parseService(svc.GetName()); err != nil {
		return nil, err
	}
	created, rev, err := s.insert(svc)
	if err != nil {
		return nil, err
	}
	return s.promote(created.GetName(), rev, created.GetGeneration())
}

// deploying tells Config.Deploying that rev's deployment started.
func (s *Server) deploying(rev *Revision) {
	if s.cfg.Deploying != nil {
		s.cfg.Deploying(rev)
	}
}

// insert stores a new service with its first revision (not serving yet).
func (s *Server) insert(in *runpb.Service) (*runpb.Service, *Revision, error) {
	loc, id, _ := parseService(in.GetName())
	for _, fd := range fieldNames(in) {
		if outputOnly[fd] {
			clearField(in, fd)
		}
	}
	if in.Template == nil {
		return nil, nil, status.Error(codes.InvalidArgument, "service.template is required")
	}
	revName, err := chooseRevisionName(id, in.GetTemplate().GetRevision(), 1)
	if err != nil {
		return nil, nil, err
	}
	in.Name = loc.Child("services", id)
	rev, err := revisionFrom(in, revName)
	if err != nil {
		return nil, nil, err
	}
	now := timestamppb.Now()
	in.Uid = resname.RandomHex(16)
	in.Generation = 1
	in.CreateTime, in.UpdateTime = now, now
	in.Creator, in.LastModifier = "gcpsim", "gcpsim"
	in.Uri = s.cfg.URL(loc.Project, loc.Location, id)
	in.Urls = []string{in.Uri}
	in.LatestCreatedRevision = loc.Child("services", id) + "/revisions/" + revName
	in.Reconciling = true
	in.TerminalCondition = condition(runpb.Condition_CONDITION_RECONCILING)
	if len(in.Traffic) == 0 {
		in.Traffic = []*runpb.TrafficTarget{{Type: runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, Percent: 100}}
	}
	in.Etag = etag(in)

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.services[in.Name]; ok {
		return nil, nil, status.Errorf(codes.AlreadyExists, "Resource '%s' already exists.", id)
	}
	s.services[in.Name] = &entry{svc: in, revisions: map[string]*Revision{revName: rev}}
	s.cfg.Logger.Debug("service created", "service", in.Name, "revision", revName, "image", rev.Image)
	return clone(in), rev, nil
}

// promote makes rev the serving revision of service name once generation
// gen is deployed, unless a newer generation was deployed meanwhile.
func (s *Server) promote(name string, rev *Revision, gen int64) (*runpb.Service, error) {
	s.mu.Lock()
	e, ok := s.services[name]
	if !ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "service %s was deleted", name)
	}
	if e.svc.GetObservedGeneration() >= gen {
		out := clone(e.svc)
		s.mu.Unlock()
		return out, nil
	}
	old := e.serving
	e.serving = rev
	e.svc.ObservedGeneration = gen
	e.svc.LatestReadyRevision = name + "/revisions/" + rev.Name
	e.svc.TrafficStatuses = []*runpb.TrafficTargetStatus{{
		Type:     runpb.TrafficTargetAllocationType_TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST,
		Revision: rev.Name, Percent: 100,
	}}
	if e.svc.GetGeneration() == gen {
		e.svc.Reconciling = false
		e.svc.TerminalCondition = condition(runpb.Condition_CONDITION_SUCCEEDED)
		e.svc.Conditions = []*runpb.Condition{
			{Type: "RoutesReady", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: timestamppb.Now()},
			{Type: "ConfigurationsReady", State: runpb.Condition_CONDITION_SUCCEEDED, LastTransitionTime: timestamppb.Now()},
		}
	}
	e.svc.Etag = etag(e.svc)
	out := clone(e.svc)
	s.mu.Unlock()
	s.cfg.Logger.Debug("revision serving", "service", name, "revision", rev.Name)
	if s.cfg.Serving != nil && rev.MinInstances > 0 {
		s.cfg.Serving(rev)
	}
	if old != nil && old.Name != rev.Name && s.cfg.Retired != nil {
		s.cfg.Retired(old)
	}
	return out, nil
}

// Serving returns the revision taking the traffic of service name: a
// NotFound status error if there is no such service, Unavailable if it has
// no ready revision yet.
func (s *Server) Serving(name string) (*Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.services[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "service %s not found", name)
	}
	if e.serving == nil {
		return nil, status.Errorf(codes.Unavailable, "service %s has no ready revision", name)
	}
	return e.serving, nil
}

func (s *Server) startOp(loc resname.Location, target string, finish func() (proto.Message, error)) (*longrunningpb.Operation, error) {
	return s.cfg.Operations.Start(lro.Spec{
		Name:  loc.NewOperation(),
		Delay: s.cfg.Delay,
		Metadata: func(bool) proto.Message {
			s.mu.Lock()
			defer s.mu.Unlock()
			if e, ok := s.services[target]; ok {
				return clone(e.svc)
			}
			return &runpb.Service{Name: target}
		},
		Finish: finish,
	})
}

// doneOp returns a completed operation answering a validate_only request.
func (s *Server) doneOp(loc resname.Location, svc *runpb.Service) (*longrunningpb.Operation, error) {
	return s.cfg.Operations.Start(lro.Spec{
		Name:     loc.NewOperation(),
		Metadata: func(bool) proto.Message { return clone(svc) },
		Finish:   func() (proto.Message, error) { return clone(svc), nil },
	})
}

func clone(s *runpb.Service) *runpb.Service {
	if s == nil {
		return nil
	}
	return proto.Clone(s).(*runpb.Service)
}

func condition(st runpb.Condition_State) *runpb.Condition {
	return &runpb.Condition{Type: "Ready", State: st, LastTransitionTime: timestamppb.Now()}
}

func etag(s *runpb.Service) string {
	return `"` + strconv.FormatInt(s.GetGeneration(), 10) + "-" + resname.RandomHex(4) + `"`
}

func lastPart(name string) string { return name[strings.LastIndex(name, "/")+1:] }

func partAt(name string, i int) string {
	p := strings.Split(name, "/")
	if i < len(p) {
		return p[i]
	}
	return ""
}
