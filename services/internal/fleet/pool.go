package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// Pooler is what the pool needs of the functions backend beyond
// engine.Functions; a backend without it has no pool.
type Pooler interface {
	// CreateStub makes function name from the stub source and returns
	// once it is ready, running no image of ours yet (CreateFunction: a
	// minute or more on Google).
	CreateStub(ctx context.Context, name string) error
	// SetImage points function name's service at image (a revision
	// deploy: seconds) with opts, and returns its invocation URL.
	SetImage(ctx context.Context, name, image string, opts ImageOptions) (url string, err error)
}

// ImageOptions are the per-image settings of a function's service.
type ImageOptions struct {
	// MinInstances keeps this many instances warm (prewarm; billed while
	// idle).
	MinInstances int
	// CPU and Memory are each instance's resources in Cloud Run's terms
	// (engine.Shape); empty keeps the backend's default.
	CPU, Memory string
}

// Pool record statuses. A pool record's key is "pool-<name>[@scope]";
// ownFunction (gc) never takes it for an image's function.
const (
	// PoolReady is a stub function, ready and unclaimed.
	PoolReady = "pooled"
	// PoolClaimed is a stub claimed for an image; the image's record now
	// names the function.
	PoolClaimed = "claimed"
)

// poolPrefix starts the keys of pool records.
const poolPrefix = "pool-"

// poolKey is the store key of the pool record of stub function name.
func (e *Fleet) poolKey(name string) string {
	k := poolPrefix + name
	if e.cfg.Scope != "" {
		k += "@" + e.cfg.Scope
	}
	return k
}

// ownPool reports whether key is a pool record of this backend.
func ownPool(key, scope string) bool {
	if !strings.HasPrefix(key, poolPrefix) {
		return false
	}
	_, s, scoped := strings.Cut(key, "@")
	if scope == "" {
		return !scoped
	}
	return s == scope
}

// PoolStatus is GET /sockerless/v1/pool's answer.
type PoolStatus struct {
	// Size is the number of ready stubs the control plane keeps.
	Size int `json:"size"`
	// Ready are stubs ready and unclaimed; Creating being made; Claimed
	// taken for an image since the pool began.
	Ready    int `json:"ready"`
	Creating int `json:"creating"`
	Claimed  int `json:"claimed"`
}

// PoolStatus counts the pool's records of this backend.
func (e *Fleet) PoolStatus(ctx context.Context) (PoolStatus, error) {
	fns, err := e.cfg.Store.ListFunctions(ctx)
	if err != nil {
		return PoolStatus{}, fmt.Errorf("pool: list functions: %w", err)
	}
	st := PoolStatus{Size: e.cfg.PoolSize}
	for _, f := range fns {
		if !ownPool(f.Key, e.cfg.Scope) {
			continue
		}
		switch {
		case f.Status == PoolReady:
			st.Ready++
		case f.Status == PoolClaimed:
			st.Claimed++
		case f.Status == engine.FunctionCreating && time.Since(f.Created) < staleClaim:
			st.Creating++
		}
	}
	return st, nil
}

// ClaimPooled takes one ready stub of scope from the pool for the image
// function forKey, oldest first, and returns its record as it was (nil if
// none is ready). Each claim is one store transaction on the stub's
// record, so two control planes on one store never take the same stub.
func ClaimPooled(ctx context.Context, st engine.Store, scope, forKey string) (*engine.Function, error) {
	fns, err := st.ListFunctions(ctx)
	if err != nil {
		return nil, fmt.Errorf("pool: list functions: %w", err)
	}
	var ready []*engine.Function
	for _, f := range fns {
		if ownPool(f.Key, scope) && f.Status == PoolReady {
			ready = append(ready, f)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].Created.Before(ready[j].Created) })
	for _, f := range ready {
		var got *engine.Function
		_, err := st.UpdateFunction(ctx, f.Key, func(cur *engine.Function) (*engine.Function, error) {
			got = nil
			if cur == nil || cur.Status != PoolReady {
				return nil, nil // another claimer was first
			}
			c := *cur
			got = &c
			next := *cur
			next.Status, next.Error = PoolClaimed, "for "+forKey
			return &next, nil
		})
		if err != nil {
			return nil, fmt.Errorf("pool: claim %s: %w", f.Key, err)
		}
		if got != nil {
			return got, nil
		}
	}
	return nil, nil
}

// pooler is the backend's Pooler if the pool is on.
func (e *Fleet) pooler() Pooler {
	if e.cfg.PoolSize <= 0 {
		return nil
	}
	p, _ := e.cfg.Functions.(Pooler)
	return p
}

// kickRefill asks the refill loop to top the pool up.
func (e *Fleet) kickRefill() {
	select {
	case e.refill <- struct{}{}:
	default:
	}
}

// refillLoop keeps PoolSize stubs ready or being made, until Close.
func (e *Fleet) refillLoop(ctx context.Context) {
	p := e.pooler()
	if p == nil {
		return
	}
	for {
		if err := e.topUp(ctx, p); err != nil && ctx.Err() == nil {
			e.log.Warn("pool refill", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-e.refill:
		case <-time.After(refillEvery):
		}
	}
}

// refillEvery is how often the pool is checked without a claim (another
// control plane may have claimed, or a creation failed).
const refillEvery = time.Minute

// topUp starts the stubs the pool lacks and waits for them.
func (e *Fleet) topUp(ctx context.Context, p Pooler) error {
	st, err := e.PoolStatus(ctx)
	if err != nil {
		return err
	}
	missing := e.cfg.PoolSize - st.Ready - st.Creating
	if missing <= 0 {
		return nil
	}
	errs := make(chan error, missing)
	for range missing {
		go func() { errs <- e.makeStub(ctx, p) }()
	}
	var first error
	for range missing {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// makeStub creates one stub function and records it as ready in the pool.
func (e *Fleet) makeStub(ctx context.Context, p Pooler) error {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := e.cfg.Prefix + "-pool-" + hex.EncodeToString(b)
	key := e.poolKey(name)
	put := func(status, msg string) error {
		_, err := e.updateFunction(context.WithoutCancel(ctx), key, func(cur *engine.Function) (*engine.Function, error) {
			f := &engine.Function{Key: key, Name: name, Status: status, Error: msg, Created: time.Now().UTC()}
			if cur != nil {
				f.Created = cur.Created
			}
			return f, nil
		})
		return err
	}
	if err := put(engine.FunctionCreating, ""); err != nil {
		return fmt.Errorf("pool: record %s: %w", name, err)
	}
	start := time.Now()
	if err := e.retryQuota(ctx, "create stub "+name, func() error { return p.CreateStub(ctx, name) }); err != nil {
		_ = put(FunctionDeleted, err.Error())
		return fmt.Errorf("pool: create stub %s: %w", name, err)
	}
	if err := put(PoolReady, ""); err != nil {
		return fmt.Errorf("pool: record %s ready: %w", name, err)
	}
	e.log.Info("pool stub ready", "function", name, "took", time.Since(start).String())
	return nil
}

// fromPool makes img's function from a pooled stub: it claims one, points
// its service at wrapped, and returns the function's name and URL; ok is
// false when the pool had none (or the stub could not take the image), and
// the caller creates the function.
func (e *Fleet) fromPool(ctx context.Context, key, wrapped string, opts ImageOptions) (name, url string, ok bool) {
	p := e.pooler()
	if p == nil {
		return "", "", false
	}
	stub, err := ClaimPooled(ctx, e.cfg.Store, e.cfg.Scope, key)
	e.kickRefill()
	if err != nil {
		e.log.Warn("pool claim", "function", key, "err", err)
		return "", "", false
	}
	if stub == nil {
		e.log.Info("pool empty: creating the function", "function", key)
		return "", "", false
	}
	err = e.retryQuota(ctx, "set image of "+stub.Name, func() error {
		var err error
		url, err = p.SetImage(ctx, stub.Name, wrapped, opts)
		return err
	})
	if err != nil {
		e.log.Warn("pooled stub did not take the image: creating the function", "stub", stub.Name, "err", err)
		_, _ = e.updateFunction(context.WithoutCancel(ctx), stub.Key, func(cur *engine.Function) (*engine.Function, error) {
			if cur == nil {
				return nil, nil
			}
			next := *cur
			next.Status, next.Error = engine.FunctionFailed, err.Error()
			return &next, nil
		})
		return "", "", false
	}
	return stub.Name, url, true
}
