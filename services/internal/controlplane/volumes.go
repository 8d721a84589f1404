package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"google.golang.org/api/option"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/functions/gcf"
	"github.com/sockerless/sockerless/services/internal/settings"
	"github.com/sockerless/sockerless/services/internal/volumes"
	"github.com/sockerless/sockerless/services/internal/volumes/gcs"
	"github.com/sockerless/sockerless/services/internal/volumes/localfs"
)

// DevBucket is the bucket of the dev stack's volumes, in gcpsim.
const DevBucket = "sockerless-volumes"

// volumeMount says what the functions mount as the shared volume file
// system, from the volume settings (dev: a gcpsim bucket); nil if none.
func (cfg *Config) volumeMount() (*gcf.Volumes, error) {
	bucket, nfs := cfg.VolumeBucket, cfg.VolumeNFS
	if bucket != "" && nfs != "" {
		return nil, fmt.Errorf("%s and %s exclude each other: volumes live in a bucket or on an NFS share", settings.Ref(settings.VolumeBucket), settings.Ref(settings.VolumeNFS))
	}
	if bucket == "" && nfs == "" {
		if !cfg.Dev {
			return nil, nil
		}
		bucket = DevBucket
	}
	if bucket != "" {
		return &gcf.Volumes{Bucket: bucket}, nil
	}
	server, path, ok := strings.Cut(nfs, ":")
	if !ok || server == "" || !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%s: want SERVER:/EXPORT, got %q", settings.Ref(settings.VolumeNFS), nfs)
	}
	if cfg.VolumeNFSDir == "" {
		return nil, fmt.Errorf("%s needs %s: where this control plane has the share mounted, to delete volume data", settings.Ref(settings.VolumeNFS), settings.Ref(settings.VolumeNFSDir))
	}
	return &gcf.Volumes{NFSServer: server, NFSPath: path, Network: cfg.VolumeNetwork, Subnetwork: cfg.VolumeSubnet}, nil
}

// volumeService opens what deletes and measures volume data and returns
// the volume service over st; nil (volumes refused) if vm is nil.
func (cfg *Config) volumeService(ctx context.Context, st engine.Store, vm *gcf.Volumes, project, simGCS string, log *slog.Logger, closers *closeStack) (*volumes.Service, error) {
	if vm == nil {
		return nil, nil
	}
	vs, ok := st.(volumes.Store)
	if !ok {
		return nil, errors.New("the store keeps no volume records")
	}
	var data volumes.Data
	if vm.Bucket != "" {
		var opts []option.ClientOption
		if simGCS != "" {
			opts = append(opts, option.WithEndpoint(simGCS), option.WithoutAuthentication())
			if err := gcs.EnsureBucket(ctx, project, vm.Bucket, opts...); err != nil {
				return nil, fmt.Errorf("volumes: %w", err)
			}
		}
		d, err := gcs.Open(ctx, vm.Bucket, opts...)
		if err != nil {
			return nil, fmt.Errorf("volumes: %w", err)
		}
		closers.add(d.Close)
		data = d
	} else {
		data = localfs.Data{Root: cfg.VolumeNFSDir}
	}
	return volumes.New(volumes.Config{
		Store: vs,
		Data:  data,
		ContainerExists: func(ctx context.Context, ns, id string) (bool, error) {
			c, err := st.GetContainer(ctx, ns, id)
			if errors.Is(err, engine.ErrNotFound) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			return c.ID == id, nil
		},
		Logger: log.With("component", "volumes"),
	}), nil
}
