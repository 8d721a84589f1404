package functions

import (
	"context"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/functions/apiv2/functionspb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sockerless/sockerless/services/internal/gcpsim/lro"
	"github.com/sockerless/sockerless/services/internal/gcpsim/quota"
	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
)

// CreateFunction validates and stores a function in state DEPLOYING; when
// the returned operation completes, the source was "built" and the
// function's Cloud Run service "projects/P/locations/L/services/<id>"
// exists with a stub image, and the function is ACTIVE (or FAILED).
func (s *Server) CreateFunction(_ context.Context, req *functionspb.CreateFunctionRequest) (*longrunningpb.Operation, error) {
	loc, err := resname.ParseLocation(req.GetParent(), false)
	if err != nil {
		return nil, err
	}
	id := req.GetFunctionId()
	if err := resname.CheckID("function", id, 63); err != nil {
		return nil, err
	}
	f := clone(req.GetFunction())
	if f == nil {
		return nil, status.Error(codes.InvalidArgument, "function is required")
	}
	if err := checkFunction(f); err != nil {
		return nil, err
	}
	name := loc.Child("functions", id)
	now := timestamppb.Now()
	f.Name = name
	f.State = functionspb.Function_DEPLOYING
	f.Environment = functionspb.Environment_GEN_2
	f.CreateTime, f.UpdateTime = now, now
	f.Url = s.cfg.FunctionURL(loc.Project, loc.Location, id)
	f.StateMessages = nil
	if f.ServiceConfig == nil {
		f.ServiceConfig = &functionspb.ServiceConfig{}
	}
	setServiceDefaults(f.ServiceConfig)
	f.ServiceConfig.Service = loc.Child("services", id)
	f.ServiceConfig.Uri = f.Url
	f.BuildConfig.Build = loc.Child("builds", resname.RandomHex(8))
	if f.BuildConfig.EntryPoint == "" {
		f.BuildConfig.EntryPoint = id
	}

	if err := s.cfg.Writes.Allow(loc.Project, loc.Location); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if _, ok := s.fns[name]; ok {
		s.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "Function %s in region %s in project %s already exists", id, loc.Location, loc.Project)
	}
	if s.cfg.MaxFunctions > 0 && s.inLocationLocked(loc) >= s.cfg.MaxFunctions {
		s.mu.Unlock()
		return nil, quota.Exceeded("cloudfunctions.googleapis.com", loc.Project, loc.Location, "FunctionsPerProjectPerRegion", "functions", s.cfg.MaxFunctions)
	}
	s.fns[name] = f
	s.mu.Unlock()
	s.creates.Add(1)
	s.cfg.Logger.Debug("function deploying", "function", name)

	return s.cfg.Operations.Start(lro.Spec{
		Name:     loc.NewOperation(),
		Delay:    s.cfg.Delay,
		Metadata: s.metadata(name, "create", functionspb.OperationType_CREATE_FUNCTION, now, clone(req.GetFunction())),
		Finish:   func() (proto.Message, error) { return s.deploy(name, true) },
	})
}

// UpdateFunction changes the fields in update_mask (all settable fields if
// empty) and redeploys: like Google, a rebuild replaces the service's image
// with the one built from source (here, the stub).
func (s *Server) UpdateFunction(_ context.Context, req *functionspb.UpdateFunctionRequest) (*longrunningpb.Operation, error) {
	in := clone(req.GetFunction())
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "function is required")
	}
	name := in.GetName()
	loc, _, err := resname.ParseChild(name, "functions")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cur, ok := s.fns[name]
	if !ok {
		s.mu.Unlock()
		_, err := s.get(name) // the NotFound error
		return nil, err
	}
	if cur.State == functionspb.Function_DEPLOYING || cur.State == functionspb.Function_DELETING {
		s.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "function %s has an operation in progress", name)
	}
	if err := s.cfg.Writes.Allow(loc.Project, loc.Location); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	next := clone(cur)
	if err := applyMask(next, in, req.GetUpdateMask().GetPaths()); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := checkFunction(next); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	setServiceDefaults(next.ServiceConfig)
	next.ServiceConfig.Service, next.ServiceConfig.Uri = cur.GetServiceConfig().GetService(), cur.GetServiceConfig().GetUri()
	next.ServiceConfig.Revision = cur.GetServiceConfig().GetRevision()
	next.State = functionspb.Function_DEPLOYING
	next.UpdateTime = timestamppb.Now()
	s.fns[name] = next
	s.mu.Unlock()
	s.updates.Add(1)
	return s.cfg.Operations.Start(lro.Spec{
		Name:     loc.NewOperation(),
		Delay:    s.cfg.Delay,
		Metadata: s.metadata(name, "update", functionspb.OperationType_UPDATE_FUNCTION, timestamppb.Now(), clone(req.GetFunction())),
		Finish:   func() (proto.Message, error) { return s.deploy(name, false) },
	})
}

// inLocationLocked counts the functions of loc.
func (s *Server) inLocationLocked(loc resname.Location) int {
	prefix := loc.Child("functions", "")
	n := 0
	for name := range s.fns {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}

// deploy "builds" function name's source and creates (or re-templates) its
// service, leaving the function ACTIVE, or FAILED with the reason.
func (s *Server) deploy(name string, create bool) (proto.Message, error) {
	s.mu.Lock()
	f := clone(s.fns[name])
	s.mu.Unlock()
	if f == nil {
		return nil, status.Errorf(codes.Aborted, "function %s was deleted during deployment", name)
	}
	fail := func(code codes.Code, msg string) (proto.Message, error) {
		s.setState(name, functionspb.Function_FAILED, msg)
		s.cfg.Logger.Debug("function deployment failed", "function", name, "reason", msg)
		return nil, status.Error(code, msg)
	}
	src := f.GetBuildConfig().GetSource().GetStorageSource()
	data, _, err := s.uploads.find(src.GetBucket(), src.GetObject())
	if err == nil {
		err = checkZip(data)
	}
	if err != nil {
		return fail(codes.InvalidArgument, "Build failed: "+err.Error())
	}
	loc, id, _ := resname.ParseChild(name, "functions")
	tmpl := template(f, StubImage(loc.Project, loc.Location, id))
	var svc *runpb.Service
	if create {
		svc, err = s.cfg.Services.CreateManaged(&runpb.Service{
			Name:     f.GetServiceConfig().GetService(),
			Labels:   map[string]string{"goog-managed-by": "cloudfunctions"},
			Template: tmpl,
		})
	} else {
		svc, err = s.cfg.Services.ReplaceTemplate(f.GetServiceConfig().GetService(), tmpl)
	}
	if err != nil {
		return fail(status.Code(err), "Could not deploy the function's service: "+status.Convert(err).Message())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.fns[name]
	if !ok {
		return nil, status.Errorf(codes.Aborted, "function %s was deleted during deployment", name)
	}
	cur.State = functionspb.Function_ACTIVE
	cur.UpdateTime = timestamppb.Now()
	cur.ServiceConfig.Revision = svc.GetLatestReadyRevision()[strings.LastIndex(svc.GetLatestReadyRevision(), "/")+1:]
	s.cfg.Logger.Debug("function active", "function", name, "revision", cur.ServiceConfig.Revision)
	return clone(cur), nil
}

func (s *Server) setState(name string, st functionspb.Function_State, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fns[name]; ok {
		f.State = st
		f.UpdateTime = timestamppb.Now()
		f.StateMessages = []*functionspb.StateMessage{{
			Severity: functionspb.StateMessage_ERROR, Type: "DeploymentError", Message: msg,
		}}
	}
}

// template is the Cloud Run revision template of function f running image.
func template(f *functionspb.Function, image string) *runpb.RevisionTemplate {
	sc := f.GetServiceConfig()
	c := &runpb.Container{
		Image:     image,
		Resources: &runpb.ResourceRequirements{Limits: map[string]string{"memory": sc.GetAvailableMemory()}},
	}
	if sc.GetAvailableCpu() != "" {
		c.Resources.Limits["cpu"] = sc.GetAvailableCpu()
	}
	keys := make([]string, 0, len(sc.GetEnvironmentVariables()))
	for k := range sc.GetEnvironmentVariables() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.Env = append(c.Env, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: sc.GetEnvironmentVariables()[k]}})
	}
	return &runpb.RevisionTemplate{
		Containers:                    []*runpb.Container{c},
		Timeout:                       durationpb.New(time.Duration(sc.GetTimeoutSeconds()) * time.Second),
		MaxInstanceRequestConcurrency: sc.GetMaxInstanceRequestConcurrency(),
		Scaling:                       &runpb.RevisionScaling{MaxInstanceCount: sc.GetMaxInstanceCount(), MinInstanceCount: sc.GetMinInstanceCount()},
		ServiceAccount:                sc.GetServiceAccountEmail(),
	}
}

// checkFunction validates what a client sets on a function.
func checkFunction(f *functionspb.Function) error {
	bc := f.GetBuildConfig()
	if bc == nil {
		return status.Error(codes.InvalidArgument, "function.build_config is required")
	}
	if bc.GetRuntime() == "" {
		return status.Error(codes.InvalidArgument, "function.build_config.runtime is required")
	}
	if !knownRuntime(bc.GetRuntime()) {
		return status.Errorf(codes.InvalidArgument, "function.build_config.runtime %q is not supported", bc.GetRuntime())
	}
	src := bc.GetSource()
	switch {
	case src.GetStorageSource() != nil:
		if src.GetStorageSource().GetBucket() == "" || src.GetStorageSource().GetObject() == "" {
			return status.Error(codes.InvalidArgument, "function.build_config.source.storage_source needs bucket and object")
		}
	case src.GetRepoSource() != nil || src.GetGitUri() != "":
		return status.Error(codes.Unimplemented, "gcpsim: only storage_source function sources are supported")
	default:
		return status.Error(codes.InvalidArgument, "function.build_config.source is required")
	}
	if f.GetEventTrigger() != nil {
		return status.Error(codes.Unimplemented, "gcpsim: event-triggered functions are not supported")
	}
	if t := f.GetServiceConfig().GetTimeoutSeconds(); t < 0 || t > MaxTimeoutSeconds {
		return status.Errorf(codes.InvalidArgument, "function.service_config.timeout_seconds %d: must be between 1 and %d", t, MaxTimeoutSeconds)
	}
	if c := f.GetServiceConfig().GetMaxInstanceRequestConcurrency(); c < 0 || c > 1000 {
		return status.Errorf(codes.InvalidArgument, "function.service_config.max_instance_request_concurrency %d: must be between 1 and 1000", c)
	}
	for k := range f.GetServiceConfig().GetEnvironmentVariables() {
		if k == "PORT" || strings.HasPrefix(k, "X_GOOGLE_") || k == "K_SERVICE" || k == "K_REVISION" {
			return status.Errorf(codes.InvalidArgument, "function.service_config.environment_variables: %s is reserved", k)
		}
	}
	return nil
}

func setServiceDefaults(sc *functionspb.ServiceConfig) {
	if sc.TimeoutSeconds == 0 {
		sc.TimeoutSeconds = DefaultTimeoutSeconds
	}
	if sc.AvailableMemory == "" {
		sc.AvailableMemory = DefaultMemory
	}
	if sc.MaxInstanceCount == 0 {
		sc.MaxInstanceCount = DefaultMaxInstances
	}
	if sc.MaxInstanceRequestConcurrency == 0 {
		sc.MaxInstanceRequestConcurrency = 1
	}
	if sc.IngressSettings == functionspb.ServiceConfig_INGRESS_SETTINGS_UNSPECIFIED {
		sc.IngressSettings = functionspb.ServiceConfig_ALLOW_ALL
	}
}

// settable are the Function fields UpdateFunction may change.
var settable = map[string]bool{
	"description": true, "build_config": true, "service_config": true, "labels": true, "kms_key_name": true,
}

// applyMask copies the settable fields named by paths' first component (all
// settable fields if paths is empty) from in to dst.
func applyMask(dst, in *functionspb.Function, paths []string) error {
	fields := dst.ProtoReflect().Descriptor().Fields()
	copyField := func(name string) {
		fd := fields.ByName(protoreflect.Name(name))
		if in.ProtoReflect().Has(fd) {
			dst.ProtoReflect().Set(fd, in.ProtoReflect().Get(fd))
		} else {
			dst.ProtoReflect().Clear(fd)
		}
	}
	if len(paths) == 0 {
		for name := range settable {
			copyField(name)
		}
	}
	for _, p := range paths {
		top := strings.SplitN(p, ".", 2)[0]
		if !settable[top] {
			return status.Errorf(codes.InvalidArgument, "update_mask: field %q cannot be updated", p)
		}
		copyField(top)
	}
	if dst.ServiceConfig == nil {
		dst.ServiceConfig = &functionspb.ServiceConfig{}
	}
	return nil
}
