package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// FunctionDeleted marks the record of a function that CollectFunctions
// deleted. The record stays (the store has no delete): the next container
// of its image creates the function again, as for an absent record.
const FunctionDeleted = "deleted"

// gcClaimError is the Error of a record while CollectFunctions deletes its
// function: the record is "creating" then, so that starts wait.
const gcClaimError = "being deleted by gc"

// GCOptions says which functions CollectFunctions deletes. Without All, it
// deletes only functions no container is running on (no open invocation).
type GCOptions struct {
	// All deletes every function this control plane made in its functions
	// backend, in use or not: containers on them end. For tearing down a
	// deployment (before terraform destroy).
	All bool
	// OlderThan, if positive, deletes unused functions created longer
	// ago than this.
	OlderThan time.Duration
	// Keep, if not negative, keeps only this many unused functions (the
	// newest) and deletes the others.
	Keep int
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
}

// GC actions in GCResult.
const (
	GCDeleted     = "deleted"
	GCWouldDelete = "would delete"
	GCKept        = "kept"
	GCFailed      = "failed"
)

// GCResult is what CollectFunctions did with one function record.
type GCResult struct {
	Key     string    `json:"key"`
	Name    string    `json:"name"`
	Status  string    `json:"status"` // the record's status before
	Created time.Time `json:"created"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason,omitempty"`
}

// CollectFunctions deletes functions as opts says and returns what it did
// with each function record of this control plane's functions backend
// (FunctionScope), oldest first. Functions of other backends are left
// alone. The error joins every deletion that failed.
func (e *Fleet) CollectFunctions(ctx context.Context, opts GCOptions) ([]GCResult, error) {
	if !opts.All && opts.OlderThan <= 0 && opts.Keep < 0 {
		return nil, engine.Errorf(engine.KindInvalid, "gc: say which functions to delete: all, older-than or keep")
	}
	fns, err := e.cfg.Store.ListFunctions(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: list functions: %w", err)
	}
	var mine []*engine.Function
	for _, f := range fns {
		if e.ownFunction(f.Key) && f.Status != FunctionDeleted {
			mine = append(mine, f)
		}
	}
	// Newest first for Keep; reported oldest first.
	sort.Slice(mine, func(i, j int) bool { return mine[i].Created.After(mine[j].Created) })
	now := time.Now()
	inUse := e.functionsInUse()
	var results []GCResult
	var byIndex []*engine.Function // the record of results[i]
	var errs []error
	unused := 0
	for _, f := range mine {
		r := GCResult{Key: f.Key, Name: f.Name, Status: f.Status, Created: f.Created, Action: GCKept}
		busy := inUse[f.URL] && f.URL != ""
		fresh := f.Status == engine.FunctionCreating && now.Sub(f.Created) < staleClaim
		switch {
		case fresh && f.Error == gcClaimError:
			r.Reason = "another gc is deleting it"
		case opts.All:
			r.Action, r.Reason = GCWouldDelete, "all"
			if fresh {
				r.Action, r.Reason = GCKept, "being created: run gc again when it is ready"
			}
		case busy:
			r.Reason = "in use"
		case fresh:
			r.Reason = "being created"
		default:
			unused++
			switch {
			case opts.OlderThan > 0 && now.Sub(f.Created) > opts.OlderThan:
				r.Action, r.Reason = GCWouldDelete, "older than "+opts.OlderThan.String()
			case opts.Keep >= 0 && unused > opts.Keep:
				r.Action, r.Reason = GCWouldDelete, fmt.Sprintf("beyond the newest %d unused", opts.Keep)
			default:
				r.Reason = "unused, within the limits"
			}
		}
		results = append(results, r)
		byIndex = append(byIndex, f)
	}
	if !opts.DryRun {
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, gcParallel)
		for i := range results {
			if results[i].Action != GCWouldDelete {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(r *GCResult, f *engine.Function) {
				defer func() { <-sem; wg.Done() }()
				err := e.deleteFunction(ctx, f, opts.All)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					r.Action = GCDeleted
				case errors.Is(err, errGCSkipped):
					r.Action, r.Reason = GCKept, strings.TrimPrefix(err.Error(), errGCSkipped.Error()+": ")
				default:
					r.Action, r.Reason = GCFailed, err.Error()
					errs = append(errs, fmt.Errorf("function %s: %w", f.Name, err))
				}
			}(&results[i], byIndex[i])
		}
		wg.Wait()
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].Created.Before(results[j].Created) })
	for _, r := range results {
		if r.Action == GCDeleted {
			e.log.Info("gc deleted function", "function", r.Name, "reason", r.Reason)
		}
	}
	return results, errors.Join(errs...)
}

// gcParallel bounds the deletions at once (each waits for a long-running
// operation of a minute or more).
const gcParallel = 8

// errGCSkipped says a function changed since it was chosen.
var errGCSkipped = errors.New("skipped")

// ownFunction reports whether the record with key belongs to this control
// plane's functions backend (see functionKey).
func (e *Fleet) ownFunction(key string) bool {
	if !strings.HasPrefix(key, "img-") {
		return false
	}
	_, scope, scoped := strings.Cut(key, "@")
	if e.cfg.Scope == "" {
		return !scoped
	}
	return scope == e.cfg.Scope
}

// functionsInUse returns the URLs of functions with open leases (open
// invocations: running containers and instances that linger).
func (e *Fleet) functionsInUse() map[string]bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]bool{}
	for url := range e.leases {
		out[url] = true
	}
	return out
}

// deleteFunction deletes f's function. First it marks the record as being
// created (by gc), so a start of its image waits instead of invoking a
// function that is going away; then, unless force, it checks again that
// nothing started on it meanwhile. Afterwards the record is FunctionDeleted,
// and a start creates it anew; if deletion failed, the record is restored.
func (e *Fleet) deleteFunction(ctx context.Context, f *engine.Function, force bool) error {
	key := f.Key
	var orig *engine.Function
	_, err := e.updateFunction(ctx, key, func(cur *engine.Function) (*engine.Function, error) {
		orig = nil
		if cur == nil || cur.Status == FunctionDeleted {
			return nil, fmt.Errorf("%w: gone already", errGCSkipped)
		}
		if cur.Status == engine.FunctionCreating && time.Since(cur.Created) < staleClaim {
			return nil, fmt.Errorf("%w: being created", errGCSkipped)
		}
		if !force && cur.URL != f.URL {
			return nil, fmt.Errorf("%w: re-created meanwhile", errGCSkipped)
		}
		c := *cur
		orig = &c
		claim := *cur
		claim.Status, claim.Error, claim.Created = engine.FunctionCreating, gcClaimError, time.Now().UTC()
		return &claim, nil
	})
	if err != nil {
		return err
	}
	ch := make(chan struct{})
	e.mu.Lock()
	e.fnWait[key] = ch
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if e.fnWait[key] == ch {
			delete(e.fnWait, key)
		}
		e.mu.Unlock()
		close(ch)
	}()
	if !force && orig.URL != "" && e.functionsInUse()[orig.URL] {
		// A start read the ready record just before the claim.
		if _, err := e.updateFunction(context.WithoutCancel(ctx), key, func(*engine.Function) (*engine.Function, error) { return orig, nil }); err != nil {
			return fmt.Errorf("restore record: %w", err)
		}
		return fmt.Errorf("%w: in use", errGCSkipped)
	}
	derr := e.cfg.Functions.Delete(ctx, orig.Name)
	_, uerr := e.updateFunction(context.WithoutCancel(ctx), key, func(*engine.Function) (*engine.Function, error) {
		if derr != nil {
			return orig, nil // still there, as far as anyone can tell: keep using it
		}
		next := *orig
		next.Status, next.URL, next.Error = FunctionDeleted, "", ""
		return &next, nil
	})
	if derr != nil {
		return derr
	}
	if uerr != nil {
		return fmt.Errorf("deleted, but recording it failed: %w", uerr)
	}
	return nil
}
