package volumes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// staleUser is how long a user whose container does not exist is kept:
// a container is created right after it acquires its volumes, so only a
// user older than this (its create failed midway, the control plane died)
// is stale.
const staleUser = 2 * time.Minute

// Config wires a Service.
type Config struct {
	Store Store
	// Data deletes and measures volume data; nil keeps data (tests).
	Data Data
	// ContainerExists reports whether container id of ns exists.
	ContainerExists func(ctx context.Context, ns, id string) (bool, error)
	Logger          *slog.Logger
}

// Service carries out docker's volume operations. It implements
// engine.Volumes.
type Service struct {
	cfg Config
	log *slog.Logger
}

var _ engine.Volumes = (*Service)(nil)

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ContainerExists == nil {
		cfg.ContainerExists = func(context.Context, string, string) (bool, error) { return true, nil }
	}
	return &Service{cfg: cfg, log: cfg.Logger}
}

// CreateRequest is docker volume create.
type CreateRequest struct {
	Name    string // "" picks a random one
	Driver  string
	Labels  map[string]string
	Options map[string]string
}

// Create makes a volume, or returns the one of that name (as docker).
func (s *Service) Create(ctx context.Context, ns string, req CreateRequest) (*Volume, error) {
	if req.Driver != "" && req.Driver != "local" {
		return nil, engine.Errorf(engine.KindNotFound, "error looking up volume plugin %s: plugin %q not found", req.Driver, req.Driver)
	}
	if len(req.Options) > 0 {
		return nil, engine.Errorf(engine.KindInvalid, "volume driver options (%s) are not supported: a Sockerless volume is a directory on the deployment's shared file system", strings.Join(engine.SortedKeys(req.Options), ", "))
	}
	name := req.Name
	if name == "" {
		name = randomHex(32)
	} else if err := engine.CheckVolumeName("create", name); err != nil {
		return nil, err
	}
	v, err := s.cfg.Store.UpdateVolume(ctx, ns, name, func(cur *Volume) (*Volume, error) {
		if cur != nil {
			if cur.Removing {
				return nil, errRemoving(name)
			}
			return nil, nil
		}
		return &Volume{Namespace: ns, Name: name, Labels: req.Labels, Created: time.Now().UTC()}, nil
	})
	if err != nil {
		return nil, wrap(err, "create volume %s", name)
	}
	return v, nil
}

// Get returns a volume: docker's 404 "get NAME: no such volume" if none.
func (s *Service) Get(ctx context.Context, ns, name string) (*Volume, error) {
	v, err := s.cfg.Store.GetVolume(ctx, ns, name)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, noSuchVolume(name)
	}
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", name, err)
	}
	return v, nil
}

// Acquire implements engine.Volumes.
func (s *Service) Acquire(ctx context.Context, ns, id string, ms []engine.Mount) ([]engine.Mount, error) {
	out := append([]engine.Mount(nil), ms...)
	var done []engine.Mount
	for i, m := range out {
		if m.Type != engine.MountVolume {
			continue
		}
		_, err := s.cfg.Store.UpdateVolume(ctx, ns, m.Name, func(cur *Volume) (*Volume, error) {
			if cur == nil {
				cur = &Volume{Namespace: ns, Name: m.Name, Labels: m.Labels, Created: time.Now().UTC(), Anonymous: m.Anonymous}
			} else if cur.Removing {
				return nil, errRemoving(m.Name)
			}
			if cur.Users == nil {
				cur.Users = map[string]time.Time{}
			}
			cur.Users[id] = time.Now().UTC()
			return cur, nil
		})
		if err != nil {
			if rerr := s.Release(context.WithoutCancel(ctx), ns, id, done, true); rerr != nil {
				s.log.Error("release volumes after a failed acquire", "container", id, "err", rerr)
			}
			return nil, wrap(err, "volume %s", m.Name)
		}
		out[i].Dir, out[i].Source = Dir(ns, m.Name), Mountpoint(ns, m.Name)
		done = append(done, out[i])
	}
	return out, nil
}

// Release implements engine.Volumes. Whether a volume is anonymous is
// the volume's, not the mount's: docker rm -v of the last container
// using an anonymous volume (one that took it with --volumes-from too)
// removes it.
func (s *Service) Release(ctx context.Context, ns, id string, ms []engine.Mount, anonymous bool) error {
	var errs []error
	seen := map[string]bool{}
	for _, m := range ms {
		if m.Type != engine.MountVolume || seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		v, err := s.cfg.Store.UpdateVolume(ctx, ns, m.Name, func(cur *Volume) (*Volume, error) {
			if cur == nil {
				return nil, nil
			}
			if _, ok := cur.Users[id]; !ok {
				return nil, nil
			}
			delete(cur.Users, id)
			return cur, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("release volume %s: %w", m.Name, err))
			continue
		}
		if anonymous && v != nil && v.Anonymous && len(v.Users) == 0 {
			if err := s.remove(ctx, ns, m.Name); err != nil && engine.KindOf(err) != engine.KindConflict && engine.KindOf(err) != engine.KindNotFound {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Remove is docker volume rm: 409 while a container uses it; with force a
// missing volume is no error.
func (s *Service) Remove(ctx context.Context, ns, name string, force bool) error {
	err := s.remove(ctx, ns, name)
	if force && engine.KindOf(err) == engine.KindNotFound {
		return nil
	}
	return err
}

// remove marks the volume removing (if nobody uses it), deletes its data,
// then its record.
func (s *Service) remove(ctx context.Context, ns, name string) error {
	v, err := s.Get(ctx, ns, name)
	if err != nil {
		return err
	}
	stale := s.staleUsers(ctx, v)
	_, err = s.cfg.Store.UpdateVolume(ctx, ns, name, func(cur *Volume) (*Volume, error) {
		if cur == nil {
			return nil, noSuchVolume(name)
		}
		for id, at := range cur.Users {
			if stale[id].Equal(at) {
				delete(cur.Users, id)
			}
		}
		if len(cur.Users) > 0 {
			ids := engine.SortedKeys(cur.Users)
			return nil, engine.Errorf(engine.KindConflict, "remove %s: volume is in use - [%s]", name, strings.Join(ids, ", "))
		}
		cur.Removing = true
		return cur, nil
	})
	if err != nil {
		return wrap(err, "remove volume %s", name)
	}
	if s.cfg.Data != nil {
		if err := s.cfg.Data.Remove(ctx, Dir(ns, name)); err != nil {
			return fmt.Errorf("remove volume %s: delete its data: %w", name, err)
		}
	}
	err = s.cfg.Store.DeleteVolume(ctx, ns, name, func(cur *Volume) error {
		if !cur.Removing || len(cur.Users) > 0 {
			return engine.Errorf(engine.KindConflict, "remove %s: volume is in use", name)
		}
		return nil
	})
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return wrap(err, "remove volume %s", name)
	}
	return nil
}

// staleUsers returns the users of v whose containers do not exist and
// that acquired it longer than staleUser ago, with their times.
func (s *Service) staleUsers(ctx context.Context, v *Volume) map[string]time.Time {
	out := map[string]time.Time{}
	for id, at := range v.Users {
		if time.Since(at) < staleUser {
			continue
		}
		ok, err := s.cfg.ContainerExists(ctx, v.Namespace, id)
		if err == nil && !ok {
			out[id] = at
		}
	}
	return out
}

// InUse reports whether v has a user whose container exists (or may).
func (s *Service) InUse(ctx context.Context, v *Volume) bool {
	return len(v.Users) > len(s.staleUsers(ctx, v))
}

func noSuchVolume(name string) error {
	return &engine.Error{Kind: engine.KindNotFound, Message: "get " + name + ": no such volume", Err: engine.ErrNotFound}
}

func errRemoving(name string) error {
	return engine.Errorf(engine.KindConflict, "volume %s is being removed; try again when it is gone", name)
}

// wrap adds context to a store error, keeping an *engine.Error's public
// message as it is.
func wrap(err error, format string, args ...any) error {
	var ee *engine.Error
	if errors.As(err, &ee) && ee != engine.ErrNotFound && ee != engine.ErrConflict {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}
