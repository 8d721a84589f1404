package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// staleClaim is how long a "creating" function record blocks others; past
// it the creator is presumed dead and another control plane takes over.
const staleClaim = 10 * time.Minute

// functionKey is the reuse key: one function per image within the
// functions backend the control plane talks to (FunctionScope).
func (e *Engine) functionKey(img *Image) string {
	k := "img-" + strings.TrimPrefix(img.ID, "sha256:")
	if e.cfg.FunctionScope != "" {
		k += "@" + e.cfg.FunctionScope
	}
	return k
}

// functionName is the Cloud Functions id for an image: lower case, ≤ 63 chars.
func (e *Engine) functionName(img *Image) string {
	h := strings.TrimPrefix(img.ID, "sha256:")
	if len(h) > 20 {
		h = h[:20]
	}
	return e.cfg.FunctionPrefix + "-" + h
}

// prewarm starts making img's function if none exists, without waiting.
func (e *Engine) prewarm(img *Image) {
	e.goBackground(func(ctx context.Context) {
		if _, err := e.cfg.Store.GetFunction(ctx, e.functionKey(img)); err == nil {
			return
		}
		if _, err := e.claimFunction(ctx, img); err != nil {
			e.log.Warn("prewarm function", "image", img.ID, "err", err)
		}
	})
}

// ensureFunction returns the ready function for img, creating it once.
func (e *Engine) ensureFunction(ctx context.Context, img *Image) (*Function, error) {
	key := e.functionKey(img)
	waited := false
	for {
		f, err := e.cfg.Store.GetFunction(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("get function %s: %w", key, err)
		}
		if err == nil {
			switch {
			case f.Status == FunctionReady:
				return f, nil
			case f.Status == FunctionCreating && time.Since(f.Created) < staleClaim:
				if err := e.waitFunction(ctx, key); err != nil {
					return nil, err
				}
				waited = true
				continue
			case f.Status == FunctionFailed && waited:
				return nil, Errorf(KindInternal, "create function for image %s: %s", img.ID, f.Error)
			}
		}
		// Absent, failed before we came, or a stale claim: (re)create.
		if _, err := e.claimFunction(ctx, img); err != nil {
			return nil, err
		}
	}
}

// waitFunction blocks until the function stops being "creating" here, or
// polls the store if another control plane creates it.
func (e *Engine) waitFunction(ctx context.Context, key string) error {
	e.mu.Lock()
	ch := e.fnWait[key]
	e.mu.Unlock()
	if ch == nil {
		t := time.NewTimer(500 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("wait for function %s: %w", key, ctx.Err())
		}
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for function %s: %w", key, ctx.Err())
	}
}

// claimFunction marks the function as being created by us (unless someone
// else is, or it is ready) and creates it in the background. It returns
// whether it claimed.
func (e *Engine) claimFunction(ctx context.Context, img *Image) (bool, error) {
	key := e.functionKey(img)
	claimed := false
	_, err := e.cfg.Store.UpdateFunction(ctx, key, func(f *Function) (*Function, error) {
		claimed = false
		if f != nil && (f.Status == FunctionReady || (f.Status == FunctionCreating && time.Since(f.Created) < staleClaim)) {
			return nil, nil
		}
		claimed = true
		return &Function{Key: key, Name: e.functionName(img), Status: FunctionCreating, Created: time.Now().UTC()}, nil
	})
	if err != nil {
		return false, fmt.Errorf("claim function %s: %w", key, err)
	}
	if !claimed {
		return false, nil
	}
	ch := make(chan struct{})
	e.mu.Lock()
	e.fnWait[key] = ch
	e.mu.Unlock()
	e.goBackground(func(bg context.Context) {
		defer func() {
			e.mu.Lock()
			delete(e.fnWait, key)
			e.mu.Unlock()
			close(ch)
		}()
		e.createFunction(bg, img, key)
	})
	return true, nil
}

// createFunction wraps the image, creates the function and records the result.
func (e *Engine) createFunction(ctx context.Context, img *Image, key string) {
	name := e.functionName(img)
	start := time.Now()
	var url, wrapped string
	wrapped, err := e.cfg.Images.Wrap(ctx, img)
	if err == nil {
		url, err = e.cfg.Functions.Create(ctx, name, wrapped)
	}
	_, uerr := e.cfg.Store.UpdateFunction(context.WithoutCancel(ctx), key, func(f *Function) (*Function, error) {
		if f == nil {
			f = &Function{Key: key, Name: name, Created: time.Now().UTC()}
		}
		f.Image = wrapped
		if err != nil {
			f.Status, f.Error = FunctionFailed, err.Error()
		} else {
			f.Status, f.URL, f.Error = FunctionReady, url, ""
		}
		return f, nil
	})
	if err != nil {
		e.log.Error("create function failed", "function", name, "image", img.ID, "err", err)
	} else {
		e.log.Info("function ready", "function", name, "image", img.ID, "took", time.Since(start).String())
	}
	if uerr != nil {
		e.log.Error("record function", "function", name, "err", uerr)
	}
}
