package instance

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/internal/mounts"
	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/agent/proto/bindsync"
)

// Barrier bounds: the initial copy of a large tree takes a while; a
// barrier with nothing pending takes a round trip.
const (
	bindOpenWait    = 30 * time.Minute
	bindBarrierWait = 10 * time.Minute
)

// bindSet is the sync of the container's host bind mounts (package
// bindsync): a session per bind, kept across runs of the instance and
// opened again if its stream ended.
type bindSet struct {
	mu       sync.Mutex
	binds    []proto.Bind
	sessions map[int]*bindsync.Opened
	mounted  map[int]bool
}

func (in *Instance) mounter() mounts.Mounter {
	if in.cfg.Mounter != nil {
		return in.cfg.Mounter
	}
	return mounts.Local{Root: proto.VolumesRoot}
}

// pullBinds makes the container's binds current before a process starts:
// it opens (initial copy, then mount) the binds not synced yet, and pulls
// the host's pending changes into the others. With binds it sets the
// container's binds first (a start).
func (in *Instance) pullBinds(ctx context.Context, binds []proto.Bind) error {
	b := &in.binds
	b.mu.Lock()
	defer b.mu.Unlock()
	if binds != nil {
		b.binds = binds
	}
	if len(b.binds) == 0 {
		return nil
	}
	if b.sessions == nil {
		b.sessions, b.mounted = map[int]*bindsync.Opened{}, map[int]bool{}
	}
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, bind := range b.binds {
		o := b.sessions[bind.Index]
		if o != nil {
			select {
			case <-o.Done():
				in.log.Warn("host bind sync ended; opening it again", "destination", bind.Destination, "err", o.Err())
				o = nil
			default:
			}
		}
		if o == nil {
			var err error
			if o, err = in.openBind(ctx, bind); err != nil {
				errs = append(errs, fmt.Errorf("bind %s: %w", bind.Destination, err))
				continue
			}
			b.sessions[bind.Index] = o
			continue // its initial copy is as fresh as a pull
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, bindBarrierWait)
			defer cancel()
			if err := o.Pull(pctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("bind %s: %w", bind.Destination, err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// openBind opens bind's sync, waits for the initial copy and mounts it.
func (in *Instance) openBind(ctx context.Context, bind proto.Bind) (*bindsync.Opened, error) {
	ctx, cancel := context.WithTimeout(ctx, bindOpenWait)
	defer cancel()
	conn, err := in.mesh.Dial(ctx, proto.MeshOpen{Kind: proto.MeshBind, Port: bind.Index})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(proto.BindsRoot, strconv.Itoa(bind.Index))
	o, err := bindsync.Open(conn, bindsync.Agent{Dir: dir, Logger: in.log.With("bind", bind.Destination)})
	if err != nil {
		return nil, err
	}
	select {
	case <-o.Ready():
	case <-o.Done():
		return nil, fmt.Errorf("initial copy: %w", o.Err())
	case <-ctx.Done():
		o.Close()
		return nil, fmt.Errorf("initial copy: %w", ctx.Err())
	}
	if in.binds.mounted[bind.Index] {
		return o, nil
	}
	src := dir
	if o.Kind == bindsync.KindFile {
		src = o.File
	}
	if err := in.mounter().Mount([]proto.Mount{{Type: proto.MountBind, Source: src, Destination: bind.Destination, ReadOnly: bind.ReadOnly}}); err != nil {
		o.Close()
		return nil, err
	}
	in.binds.mounted[bind.Index] = true
	in.log.Info("host bind synced and mounted", "destination", bind.Destination, "kind", o.Kind, "readOnly", bind.ReadOnly)
	return o, nil
}

// flushBinds puts the container's changes of its binds on the host: after
// a process or exec ended, before its exit is reported.
func (in *Instance) flushBinds(ctx context.Context) {
	b := &in.binds
	b.mu.Lock()
	sessions := make([]*bindsync.Opened, 0, len(b.sessions))
	for _, o := range b.sessions {
		sessions = append(sessions, o)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, o := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, bindBarrierWait)
			defer cancel()
			if err := o.Sync(sctx); err != nil {
				in.log.Warn("host bind: container changes not flushed", "err", err)
			}
		}()
	}
	wg.Wait()
}

// closeBinds ends the binds' sync.
func (in *Instance) closeBinds() {
	b := &in.binds
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.sessions {
		o.Close()
	}
	b.sessions = nil
}
