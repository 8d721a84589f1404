package instance

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
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
	closed   bool
	has      atomic.Bool // binds is not empty (read without mu)
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
	if binds != nil {
		b.binds = binds
		b.has.Store(len(binds) > 0)
	}
	if b.sessions == nil {
		b.sessions, b.mounted = map[int]*bindsync.Opened{}, map[int]bool{}
	}
	var errs []error
	var pull []*bindsync.Opened
	var dests []string
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
			// Opened (and the initial copy done) under the lock: one open
			// per bind at a time.
			n, err := in.openBind(ctx, bind, b.sessions[bind.Index])
			if err != nil {
				errs = append(errs, fmt.Errorf("bind %s: %w", bind.Destination, err))
				continue
			}
			b.sessions[bind.Index] = n
			continue // its initial copy is as fresh as a pull
		}
		pull, dests = append(pull, o), append(dests, bind.Destination)
	}
	b.mu.Unlock()
	// Pulls of concurrent execs go on side by side.
	var wg sync.WaitGroup
	var emu sync.Mutex
	for i, o := range pull {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, bindBarrierWait)
			defer cancel()
			if err := o.Pull(pctx); err != nil {
				emu.Lock()
				errs = append(errs, fmt.Errorf("bind %s: %w", dests[i], err))
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// hasBinds reports whether the container has host binds.
func (in *Instance) hasBinds() bool { return in.binds.has.Load() }

// openBind opens bind's sync, waits for the initial copy and mounts it;
// after a previous session prev (nil: none), only what changed since
// travels. b.mu is held.
func (in *Instance) openBind(ctx context.Context, bind proto.Bind, prev *bindsync.Opened) (*bindsync.Opened, error) {
	o, err := in.dialBind(ctx, bind, prev)
	if err != nil {
		return nil, err
	}
	go in.keepBind(bind, o)
	return o, nil
}

// keepBind opens bind's sync again when its stream ends (the mesh
// reconnected, the control plane or forwarder restarted), so changes keep
// flowing between barriers, until the instance ends.
func (in *Instance) keepBind(bind proto.Bind, o *bindsync.Opened) {
	select {
	case <-o.Done():
	case <-in.done:
		return
	}
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		select {
		case <-in.done:
			return
		case <-time.After(backoff):
		}
		b := &in.binds
		b.mu.Lock()
		if b.closed || b.sessions[bind.Index] != o {
			b.mu.Unlock()
			return // closed, or pullBinds opened it again
		}
		ctx, cancel := context.WithTimeout(context.Background(), bindOpenWait)
		n, err := in.dialBind(ctx, bind, o)
		cancel()
		if err == nil {
			b.sessions[bind.Index] = n
		}
		b.mu.Unlock()
		if err == nil {
			in.log.Info("host bind sync open again", "destination", bind.Destination)
			go in.keepBind(bind, n)
			return
		}
		in.log.Warn("host bind sync: open again", "destination", bind.Destination, "err", err)
	}
}

// dialBind opens one session of bind's sync and mounts the bind after its
// first initial copy. b.mu is held.
func (in *Instance) dialBind(ctx context.Context, bind proto.Bind, prev *bindsync.Opened) (*bindsync.Opened, error) {
	ctx, cancel := context.WithTimeout(ctx, bindOpenWait)
	defer cancel()
	conn, err := in.mesh.Dial(ctx, proto.MeshOpen{Kind: proto.MeshBind, Port: bind.Index})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(proto.BindsRoot, strconv.Itoa(bind.Index))
	a := bindsync.Agent{Dir: dir, Logger: in.log.With("bind", bind.Destination)}
	if prev != nil {
		a.Prev = prev.State()
	}
	o, err := bindsync.Open(conn, a)
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
	b.closed = true
	for _, o := range b.sessions {
		o.Close()
	}
	b.sessions = nil
}
