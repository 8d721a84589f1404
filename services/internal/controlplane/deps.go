package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
	"github.com/sockerless/sockerless/services/internal/audit"
	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/cloudlogs"
	"github.com/sockerless/sockerless/services/internal/dockerapi"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/functions/gcf"
	"github.com/sockerless/sockerless/services/internal/imageops"
	"github.com/sockerless/sockerless/services/internal/images"
	"github.com/sockerless/sockerless/services/internal/netplane"
	"github.com/sockerless/sockerless/services/internal/settings"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
	"github.com/sockerless/sockerless/services/internal/store/firestore"
	"github.com/sockerless/sockerless/services/internal/volumes"
)

// store is what both stores implement: the engine's and the network
// plane's slices.
type store interface {
	engine.Store
	netplane.Store
	auth.Store
	engine.UsageLedger
	// ContainerNamespaces lists the namespaces holding containers, each
	// recovered at start.
	ContainerNamespaces(ctx context.Context) ([]string, error)
}

// dependencies are the engine's adapters.
type dependencies struct {
	store  store
	images engine.ImageSource
	// registry is where image bytes live, for the image operations.
	registry imageops.Registry
	// login checks docker login's credentials against their registry.
	login     dockerapi.Login
	functions engine.Functions
	simURL    string // dev: gcpsim's HTTP base URL
	simGCS    string // dev: gcpsim's Cloud Storage endpoint
	// scope names the functions backend: an in-process gcpsim is new on
	// every start, so its functions are never reused from an earlier run.
	scope string
	// bootLogs reads Cloud Logging (gcpsim's in dev) for containers whose
	// agent never called back.
	bootLogs engine.BootLogs
	// volumes serves docker volumes; nil without a volume file system.
	volumes *volumes.Service
	// audit takes the audit trail.
	audit audit.Sink
}

// volumesOrNil is the engine's view of volumes (a nil interface, not a
// nil pointer, when there are none).
func (d *dependencies) volumesOrNil() engine.Volumes {
	if d.volumes == nil {
		return nil
	}
	return d.volumes
}

// dependencies opens the store and the Google-facing adapters; in dev mode
// without --gcp-endpoint it starts gcpsim in-process first.
func (cfg *Config) dependencies(ctx context.Context, log *slog.Logger, closers *closeStack) (*dependencies, error) {
	d := &dependencies{}
	st, err := cfg.openStore(ctx)
	if err != nil {
		return nil, err
	}
	closers.add(st.Close)
	d.store = st

	project, region, endpoint, repo := cfg.Project, cfg.Region, cfg.GCPEndpoint, cfg.TargetRepo
	insecure := false
	if cfg.Dev && endpoint == "" {
		if cfg.DevSim == nil {
			return nil, fmt.Errorf("--dev needs a gcpsim: this build wires none in (or set --gcp-endpoint)")
		}
		ep, closeSim, err := cfg.DevSim(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		closers.add(closeSim)
		endpoint = ep.GRPC
		d.simURL, d.simGCS = ep.HTTP, ep.Storage
		if repo == "" {
			repo = ep.Registry + "/sockerless/wrapped"
		}
	}
	if cfg.Dev {
		insecure = true
		if project == "" {
			project = "sockerless-dev"
		}
		if region == "" {
			region = "local"
		}
	}
	if repo == "" {
		return nil, fmt.Errorf("--image-repo (SOCKERLESS_IMAGE_REPO) is required")
	}
	var keychain authn.Keychain = authn.DefaultKeychain
	if !cfg.Dev {
		// On Cloud Run, Artifact Registry takes the service account's
		// token (the metadata server), which the default keychain lacks.
		keychain = authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain)
	}
	src, err := images.New(images.Config{
		Mirrors:     cfg.RegistryMirrors,
		TargetRepo:  repo,
		AgentBinary: cfg.AgentBinary,
		Insecure:    insecure,
		Keychain:    keychain,
		Allow:       cfg.RegistryAllow,
	})
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	d.images, d.registry, d.login = src, src, src.Login
	gcfCfg := gcf.Config{
		Project:        project,
		Region:         region,
		ServiceAccount: cfg.ServiceAccount,
		Endpoint:       endpoint,
		MaxInstances:   cfg.MaxInstances,
		Logger:         log.With("component", "functions"),
	}
	if cfg.Dev {
		gcfCfg.PollInterval = 100 * time.Millisecond // gcpsim's operations are short
	}
	vm, err := cfg.volumeMount()
	if err != nil {
		return nil, err
	}
	gcfCfg.Volumes = vm
	fns, err := gcf.New(ctx, gcfCfg)
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	closers.add(fns.Close)
	d.functions = fns
	logs, err := cloudlogs.New(ctx, cloudlogs.Config{Project: project, Endpoint: endpoint})
	if err != nil {
		return nil, err
	}
	closers.add(logs.Close)
	d.bootLogs = logs
	d.scope = project + "/" + region
	if endpoint != "" {
		d.scope += "/" + endpoint
	}
	if vm != nil { // functions made without (or with another) volume mount are not reused
		d.scope += "/vol=" + vm.Bucket + vm.NFSServer + vm.NFSPath
	}
	if d.volumes, err = cfg.volumeService(ctx, st, vm, project, d.simGCS, log, closers); err != nil {
		return nil, err
	}
	if d.audit, err = cfg.auditSink(ctx, project, endpoint, log, closers); err != nil {
		return nil, err
	}
	return d, nil
}

// openStore opens the store --store names: bolt (the default) in the
// state directory, or Firestore in --gcp-project.
func (cfg *Config) openStore(ctx context.Context) (store, error) {
	switch cfg.Store {
	case "", "bolt":
		st, err := bolt.Open(filepath.Join(cfg.StateDir, "store.db"))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	case "firestore":
		if cfg.Project == "" {
			return nil, fmt.Errorf("--store firestore needs %s", settings.Ref(settings.GCPProject))
		}
		st, err := firestore.Open(ctx, cfg.Project, firestore.Options{Latency: cfg.StoreLatency})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("%s: unknown store %q (bolt or firestore)", settings.Ref(settings.Store), cfg.Store)
}
