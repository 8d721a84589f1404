package gcf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	functions "cloud.google.com/go/functions/apiv2"
	"cloud.google.com/go/functions/apiv2/functionspb"
	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
)

// Defaults of Config.
const (
	DefaultTimeoutSeconds = 3600
	DefaultMaxInstances   = 100
	DefaultMemory         = "512Mi"
	DefaultCPU            = "1"
	DefaultPollInterval   = time.Second
)

// DefaultShape is the resources of a function instance with the default
// CPU and memory: what docker info reports as the machine's.
func DefaultShape() (cpus int, memBytes int64) {
	return 1, 512 << 20 // DefaultCPU, DefaultMemory
}

// Config configures a Driver.
type Config struct {
	// Project and Region locate the functions. Required.
	Project, Region string
	// ServiceAccount is the email of the account functions run as; empty
	// means the project's default compute account.
	ServiceAccount string
	// Endpoint, if set, is a gcpsim gRPC address (host:port), reached in
	// plaintext without credentials; empty means Google.
	Endpoint string
	// MaxInstances bounds the instances, so the running containers, of one
	// function; default 100.
	MaxInstances int
	// TimeoutSeconds is the request timeout, so a container's longest
	// life; default (and Google's maximum) 3600.
	TimeoutSeconds int
	// Memory and CPU are each instance's resources; default 512Mi and 1.
	Memory, CPU string
	// Env is set in every function's environment.
	Env map[string]string
	// Volumes, if set, is mounted in every function (volumes.go).
	Volumes *Volumes
	// PollInterval is how often operations are polled; default 1 s.
	PollInterval time.Duration
	// HTTPClient uploads sources and invokes functions; default a client
	// without timeouts (an invocation lasts as long as its container).
	HTTPClient *http.Client
	// Logger receives the driver's logs.
	Logger *slog.Logger
}

// Driver implements engine.Functions.
type Driver struct {
	cfg       Config
	parent    string
	functions *functions.FunctionClient
	services  *run.ServicesClient
	http      *http.Client
	logger    *slog.Logger

	tokensMu sync.Mutex
	tokens   map[string]oauth2.TokenSource // by audience; production only

	noWaitOp atomic.Bool // Cloud Run's operations answered WaitOperation with an error: poll only
}

var _ engine.Functions = (*Driver)(nil)

// New connects the Functions and Run clients.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.Project == "" || cfg.Region == "" {
		return nil, errors.New("gcf: Project and Region are required")
	}
	if cfg.TimeoutSeconds <= 0 {
		cfg.TimeoutSeconds = DefaultTimeoutSeconds
	}
	if cfg.TimeoutSeconds > DefaultTimeoutSeconds {
		return nil, fmt.Errorf("gcf: TimeoutSeconds %d exceeds Google's limit of %d", cfg.TimeoutSeconds, DefaultTimeoutSeconds)
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = DefaultMaxInstances
	}
	if cfg.Memory == "" {
		cfg.Memory = DefaultMemory
	}
	if cfg.CPU == "" {
		cfg.CPU = DefaultCPU
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts,
			option.WithEndpoint(cfg.Endpoint),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	fc, err := functions.NewFunctionClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcf: functions client: %w", err)
	}
	rc, err := run.NewServicesClient(ctx, opts...)
	if err != nil {
		fc.Close()
		return nil, fmt.Errorf("gcf: run client: %w", err)
	}
	return &Driver{
		cfg: cfg, parent: "projects/" + cfg.Project + "/locations/" + cfg.Region,
		functions: fc, services: rc, http: hc, logger: cfg.Logger,
		tokens: map[string]oauth2.TokenSource{},
	}, nil
}

// Close releases the clients.
func (d *Driver) Close() error {
	return errors.Join(d.functions.Close(), d.services.Close())
}

// Create makes function name from the stub source, sets its service's
// image to image, and returns the function URL once the new revision
// serves. If the function exists it is reused and only its image is set.
func (d *Driver) Create(ctx context.Context, name, image string) (string, error) {
	f, err := d.ensureFunction(ctx, name)
	if err != nil {
		return "", quotaErr(fmt.Errorf("create function %s: %w", name, err))
	}
	return d.pointAt(ctx, f, image, fleet.ImageOptions{})
}

// CreateStub makes function name from the stub source (or finds it) and
// returns once it is ACTIVE, its service running the stub: a pooled
// function (package fleet).
func (d *Driver) CreateStub(ctx context.Context, name string) error {
	if _, err := d.ensureFunction(ctx, name); err != nil {
		return quotaErr(fmt.Errorf("create function %s: %w", name, err))
	}
	return nil
}

// SetImage points the service of function name at image with opts and
// returns the function's URL once the new revision serves.
func (d *Driver) SetImage(ctx context.Context, name, image string, opts fleet.ImageOptions) (string, error) {
	f, err := d.functions.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: d.parent + "/functions/" + name})
	if err != nil {
		return "", quotaErr(fmt.Errorf("get function %s: %w", name, err))
	}
	return d.pointAt(ctx, f, image, opts)
}

// pointAt sets the image of f's service and returns f's URL.
func (d *Driver) pointAt(ctx context.Context, f *functionspb.Function, image string, opts fleet.ImageOptions) (string, error) {
	name := f.GetName()
	svc := f.GetServiceConfig().GetService()
	if svc == "" {
		return "", fmt.Errorf("function %s has no Cloud Run service", name)
	}
	if err := d.setImage(ctx, svc, image, opts); err != nil {
		return "", quotaErr(fmt.Errorf("function %s: set image: %w", name, err))
	}
	url := f.GetUrl()
	if url == "" {
		url = f.GetServiceConfig().GetUri()
	}
	d.logger.Info("function ready", "function", name, "image", image, "url", url, "minInstances", opts.MinInstances)
	return url, nil
}

// quotaErr marks an error of a call Google refused over quota
// (RESOURCE_EXHAUSTED) as engine.ErrQuota, which callers retry.
func quotaErr(err error) error {
	if status.Code(err) == codes.ResourceExhausted {
		return fmt.Errorf("%w: %w", engine.ErrQuota, err)
	}
	return err
}

// ensureFunction creates function name from the stub source, or finds it,
// and waits until it is ACTIVE.
func (d *Driver) ensureFunction(ctx context.Context, name string) (*functionspb.Function, error) {
	src, err := d.uploadStub(ctx)
	if err != nil {
		return nil, err
	}
	op, err := d.functions.CreateFunction(ctx, &functionspb.CreateFunctionRequest{
		Parent:     d.parent,
		FunctionId: name,
		Function: &functionspb.Function{
			Description: "Sockerless function; its Cloud Run service runs a wrapped container image.",
			Environment: functionspb.Environment_GEN_2,
			Labels:      map[string]string{"managed-by": "sockerless"},
			BuildConfig: &functionspb.BuildConfig{
				Runtime: StubRuntime, EntryPoint: StubEntryPoint,
				Source: &functionspb.Source{Source: &functionspb.Source_StorageSource{StorageSource: src}},
			},
			ServiceConfig: &functionspb.ServiceConfig{
				AvailableMemory:               d.cfg.Memory,
				AvailableCpu:                  d.cfg.CPU,
				TimeoutSeconds:                int32(d.cfg.TimeoutSeconds),
				MaxInstanceCount:              int32(d.cfg.MaxInstances),
				MaxInstanceRequestConcurrency: 1,
				ServiceAccountEmail:           d.cfg.ServiceAccount,
				EnvironmentVariables:          d.cfg.Env,
				AllTrafficOnLatestRevision:    true,
				IngressSettings:               functionspb.ServiceConfig_ALLOW_ALL,
			},
		},
	})
	if status.Code(err) == codes.AlreadyExists {
		d.logger.Info("function exists; reusing it", "function", name)
		return d.awaitActive(ctx, d.parent+"/functions/"+name)
	}
	if err != nil {
		return nil, fmt.Errorf("CreateFunction: %w", err)
	}
	var f *functionspb.Function
	err = waitDone(ctx, d.cfg.PollInterval, func(ctx context.Context) (bool, error) {
		var perr error
		f, perr = op.Poll(ctx)
		return op.Done(), perr
	})
	if err != nil {
		return nil, fmt.Errorf("CreateFunction operation: %w", err)
	}
	return f, nil
}

// awaitActive waits until an existing function is no longer deploying.
func (d *Driver) awaitActive(ctx context.Context, name string) (*functionspb.Function, error) {
	var f *functionspb.Function
	err := waitDone(ctx, d.cfg.PollInterval, func(ctx context.Context) (bool, error) {
		var err error
		f, err = d.functions.GetFunction(ctx, &functionspb.GetFunctionRequest{Name: name})
		if err != nil {
			return false, fmt.Errorf("GetFunction: %w", err)
		}
		switch f.GetState() {
		case functionspb.Function_ACTIVE:
			return true, nil
		case functionspb.Function_FAILED, functionspb.Function_DELETING:
			return false, fmt.Errorf("function is %s: %v", f.GetState(), f.GetStateMessages())
		}
		return false, nil
	})
	return f, err
}

// uploadStub uploads the stub source and returns where it is stored.
func (d *Driver) uploadStub(ctx context.Context) (*functionspb.StorageSource, error) {
	data, err := stubZip()
	if err != nil {
		return nil, err
	}
	u, err := d.functions.GenerateUploadUrl(ctx, &functionspb.GenerateUploadUrlRequest{Parent: d.parent})
	if err != nil {
		return nil, fmt.Errorf("GenerateUploadUrl: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.GetUploadUrl(), bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("upload source: %w", err)
	}
	req.Header.Set("Content-Type", "application/zip")
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("upload source: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("upload source: status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return u.GetStorageSource(), nil
}

// setImage makes service run image with one request per instance, the
// configured timeout, max instances and env, and waits for the revision.
func (d *Driver) setImage(ctx context.Context, name, image string, opts fleet.ImageOptions) error {
	for attempt := 0; ; attempt++ {
		svc, err := d.services.GetService(ctx, &runpb.GetServiceRequest{Name: name})
		if err != nil {
			return fmt.Errorf("GetService: %w", err)
		}
		t := svc.GetTemplate()
		if t == nil || len(t.GetContainers()) == 0 {
			return fmt.Errorf("service %s has no container", name)
		}
		t.Revision = "" // a new revision gets a new generated name
		c := t.Containers[0]
		c.Image = image
		c.Env = mergeEnv(c.GetEnv(), d.cfg.Env)
		t.MaxInstanceRequestConcurrency = 1
		t.Timeout = durationpb.New(time.Duration(d.cfg.TimeoutSeconds) * time.Second)
		if t.Scaling == nil {
			t.Scaling = &runpb.RevisionScaling{}
		}
		t.Scaling.MaxInstanceCount = int32(d.cfg.MaxInstances)
		t.Scaling.MinInstanceCount = int32(opts.MinInstances)
		if opts.CPU != "" || opts.Memory != "" {
			if c.Resources == nil {
				c.Resources = &runpb.ResourceRequirements{}
			}
			if c.Resources.Limits == nil {
				c.Resources.Limits = map[string]string{}
			}
			if opts.CPU != "" {
				c.Resources.Limits["cpu"] = opts.CPU
			}
			if opts.Memory != "" {
				c.Resources.Limits["memory"] = opts.Memory
			}
		}
		// The second generation execution environment: the container may
		// mount file systems, and gets a full Linux (DESIGN.md).
		t.ExecutionEnvironment = runpb.ExecutionEnvironment_EXECUTION_ENVIRONMENT_GEN2
		if d.cfg.Volumes != nil {
			d.cfg.Volumes.apply(t)
		}

		op, err := d.services.UpdateService(ctx, &runpb.UpdateServiceRequest{Service: svc})
		if status.Code(err) == codes.Aborted && attempt < 3 {
			continue // changed since GetService (etag): read again
		}
		if err != nil {
			return fmt.Errorf("UpdateService: %w", err)
		}
		d.awaitRunOp(ctx, op.Name())
		var out *runpb.Service
		err = waitDone(ctx, d.cfg.PollInterval, func(ctx context.Context) (bool, error) {
			var perr error
			out, perr = op.Poll(ctx)
			return op.Done(), perr
		})
		if err != nil {
			return fmt.Errorf("UpdateService operation: %w", err)
		}
		if got := out.GetTemplate().GetContainers()[0].GetImage(); got != image {
			return fmt.Errorf("service %s runs %s after the update, want %s", name, got, image)
		}
		return nil
	}
}

// mergeEnv sets env's variables in vars, keeping the others, sorted by name
// for the added ones so revisions compare equal.
func mergeEnv(vars []*runpb.EnvVar, env map[string]string) []*runpb.EnvVar {
	seen := map[string]bool{}
	for _, v := range vars {
		if val, ok := env[v.GetName()]; ok {
			v.Values = &runpb.EnvVar_Value{Value: val}
		}
		seen[v.GetName()] = true
	}
	var add []string
	for k := range env {
		if !seen[k] {
			add = append(add, k)
		}
	}
	sort.Strings(add)
	for _, k := range add {
		vars = append(vars, &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: env[k]}})
	}
	return vars
}

// Delete removes function name (and with it its service). Deleting a
// function that does not exist succeeds.
func (d *Driver) Delete(ctx context.Context, name string) error {
	op, err := d.functions.DeleteFunction(ctx, &functionspb.DeleteFunctionRequest{Name: d.parent + "/functions/" + name})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return quotaErr(fmt.Errorf("delete function %s: %w", name, err))
	}
	err = waitDone(ctx, d.cfg.PollInterval, func(ctx context.Context) (bool, error) {
		perr := op.Poll(ctx)
		return op.Done(), perr
	})
	if err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("delete function %s: %w", name, err)
	}
	return nil
}
