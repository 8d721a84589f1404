package run

import (
	"fmt"
	"time"

	"cloud.google.com/go/run/apiv2/runpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits and defaults of Cloud Run services.
const (
	DefaultTimeout      = 300 * time.Second
	MaxTimeout          = 3600 * time.Second
	DefaultConcurrency  = 80
	MaxConcurrency      = 1000
	DefaultMaxInstances = 100
)

// Revision is an immutable snapshot of a service's template: what an
// instance of it runs and how requests reach it.
type Revision struct {
	// Service is the service's full name.
	Service string
	// Project, Location and ServiceID are the parts of Service.
	Project, Location, ServiceID string
	// Name is the revision's short name ("svc-00002-abc").
	Name string
	// Image is the container image reference.
	Image string
	// Command and Args override the image's Entrypoint and Cmd when set.
	Command, Args []string
	// Env is the container's environment as KEY=VALUE.
	Env []string
	// WorkingDir overrides the image's working directory when set.
	WorkingDir string
	// Timeout is the request timeout.
	Timeout time.Duration
	// Concurrency is the most requests one instance serves at a time.
	Concurrency int
	// MaxInstances bounds the instances of this revision; MinInstances
	// are kept running, idle or not (scaling.min_instance_count).
	MaxInstances, MinInstances int
	// Gen2 is the second generation execution environment (a microVM,
	// where the container may mount file systems).
	Gen2 bool
	// Volumes are the Cloud Run volumes mounted into the container.
	Volumes []VolumeMount
}

// revisionFrom validates svc's template and snapshots it as revision name.
func revisionFrom(svc *runpb.Service, name string) (*Revision, error) {
	loc, id, err := parseService(svc.GetName())
	if err != nil {
		return nil, err
	}
	t := svc.GetTemplate()
	if t == nil || len(t.GetContainers()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "service.template.containers: at least one container is required")
	}
	if len(t.GetContainers()) > 1 {
		return nil, status.Error(codes.Unimplemented, "gcpsim: multi-container services are not supported")
	}
	c := t.GetContainers()[0]
	if c.GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "service.template.containers[0].image is required")
	}
	r := &Revision{
		Service: svc.GetName(), Project: loc.Project, Location: loc.Location, ServiceID: id,
		Name:    name,
		Image:   c.GetImage(),
		Command: c.GetCommand(), Args: c.GetArgs(), WorkingDir: c.GetWorkingDir(),
		Timeout:      DefaultTimeout,
		Concurrency:  int(t.GetMaxInstanceRequestConcurrency()),
		MaxInstances: int(t.GetScaling().GetMaxInstanceCount()),
		MinInstances: int(t.GetScaling().GetMinInstanceCount()),
	}
	r.Gen2 = t.GetExecutionEnvironment() == runpb.ExecutionEnvironment_EXECUTION_ENVIRONMENT_GEN2
	if r.Volumes, err = volumeMounts(t, c); err != nil {
		return nil, err
	}
	for _, e := range c.GetEnv() {
		if e.GetName() == "" {
			return nil, status.Error(codes.InvalidArgument, "service.template.containers[0].env: name is required")
		}
		if e.GetValueSource() != nil {
			return nil, status.Errorf(codes.Unimplemented, "gcpsim: env %s: secret value sources are not supported", e.GetName())
		}
		if e.GetName() == "PORT" {
			return nil, status.Error(codes.InvalidArgument, "service.template.containers[0].env: PORT is reserved and set by Cloud Run")
		}
		r.Env = append(r.Env, e.GetName()+"="+e.GetValue())
	}
	if d := t.GetTimeout(); d != nil {
		r.Timeout = d.AsDuration()
		if r.Timeout <= 0 || r.Timeout > MaxTimeout {
			return nil, status.Errorf(codes.InvalidArgument, "service.template.timeout %s: must be between 1s and %s", r.Timeout, MaxTimeout)
		}
	}
	if r.Concurrency < 0 || r.Concurrency > MaxConcurrency {
		return nil, status.Errorf(codes.InvalidArgument, "max_instance_request_concurrency %d: must be between 1 and %d", r.Concurrency, MaxConcurrency)
	}
	if r.Concurrency == 0 {
		r.Concurrency = DefaultConcurrency
	}
	if r.MaxInstances == 0 {
		r.MaxInstances = int(svc.GetScaling().GetMaxInstanceCount())
	}
	if r.MaxInstances < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_instance_count %d: must not be negative", r.MaxInstances)
	}
	if r.MaxInstances == 0 {
		r.MaxInstances = DefaultMaxInstances
	}
	if r.MinInstances < 0 || r.MinInstances > r.MaxInstances {
		return nil, status.Errorf(codes.InvalidArgument, "min_instance_count %d: must be between 0 and max_instance_count %d", r.MinInstances, r.MaxInstances)
	}
	return r, nil
}

// revisionName returns the name of a service's generation-th revision, as
// Cloud Run names them: "<service>-<5 digits>-<3 letters>".
func revisionName(serviceID string, generation int64, suffix string) string {
	return fmt.Sprintf("%s-%05d-%s", serviceID, generation, suffix)
}
