package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/ttlcache"
)

// Config wires a Fleet to the store and the cloud.
type Config struct {
	Store     engine.Store
	Images    engine.ImageSource
	Functions engine.Functions
	// Prefix starts every function name this control plane makes.
	Prefix string
	// Scope names the functions backend (project/region, or one run of an
	// in-process gcpsim); function records of another scope are not reused.
	Scope string
	// PoolSize is the number of stub functions kept ready ahead (pool.go);
	// 0, or a backend that is no Pooler, keeps none.
	PoolSize int
	// Prewarm says which images keep a warm instance (min instances 1 on
	// their function's service): billed while idle, so off unless set.
	Prewarm func(img *engine.Image) bool
	// QuotaRetry is how long a call refused over quota is retried, with
	// backoff, before the error is reported; default 5 minutes.
	QuotaRetry time.Duration
	Logger     *slog.Logger
}

// Fleet makes, shares and collects the functions of images. It implements
// engine.Fleet.
type Fleet struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	fnWait map[string]chan struct{} // closed when this process's creation (or deletion) of a key ends
	leases map[string]int           // open leases by function URL
	refill chan struct{}            // kicks the pool's refill loop
	// ready are ready function records read lately (getFunction).
	ready *ttlcache.Cache[string, *engine.Function]
	reads ttlcache.Reads[*engine.Function] // store reads of function records under way

	wg     sync.WaitGroup
	ctx    context.Context // lives until Close; owns background work
	cancel context.CancelFunc
}

var _ engine.Fleet = (*Fleet)(nil)

// New returns a Fleet. Close stops its background work.
func New(cfg Config) *Fleet {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "sockerless"
	}
	if cfg.QuotaRetry <= 0 {
		cfg.QuotaRetry = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Fleet{
		cfg:    cfg,
		log:    cfg.Logger,
		fnWait: map[string]chan struct{}{},
		leases: map[string]int{},
		refill: make(chan struct{}, 1),
		ready:  ttlcache.New[string, *engine.Function](functionCacheTTL),
		ctx:    ctx,
		cancel: cancel,
	}
	e.goBackground(e.refillLoop)
	if w, ok := cfg.Images.(Warmer); ok {
		e.goBackground(func(ctx context.Context) {
			start := time.Now()
			if err := w.Warm(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("warm the image wrap (the first wrap does it instead)", "err", err)
				return
			}
			e.log.Debug("image wrap warm", "took", time.Since(start).String())
		})
	}
	return e
}

// Warmer is an image source that can get ready for its first Wrap ahead
// (images.Source: the agent layer built and in the target repository); the
// fleet warms it as it starts, beside filling the pool, so that the first
// run of a never-seen image does not wait for that.
type Warmer interface {
	Warm(ctx context.Context) error
}

// Close cancels background work (creations in flight) and waits for it.
func (e *Fleet) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

// goBackground runs f as background work owned by the fleet.
func (e *Fleet) goBackground(f func(ctx context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f(e.ctx)
	}()
}

// lease is one invocation's hold on a function.
type lease struct {
	f    *Fleet
	url  string
	once sync.Once
}

func (l *lease) URL() string { return l.url }

func (l *lease) Release() {
	l.once.Do(func() {
		l.f.mu.Lock()
		defer l.f.mu.Unlock()
		if l.f.leases[l.url]--; l.f.leases[l.url] <= 0 {
			delete(l.f.leases, l.url)
		}
	})
}

// Acquire waits until img's function is ready, making it once, and returns
// a lease on it.
func (e *Fleet) Acquire(ctx context.Context, img *engine.Image, shape engine.Shape) (engine.Lease, error) {
	f, err := e.ensureFunction(ctx, img, shape)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.leases[f.URL]++
	e.mu.Unlock()
	return &lease{f: e, url: f.URL}, nil
}

// staleClaim is how long a "creating" function record blocks others; past
// it the creator is presumed dead and another control plane takes over.
const staleClaim = 10 * time.Minute

// Key is the reuse key: one function per image and instance shape within
// the functions backend the control plane talks to (Config.Scope).
func (e *Fleet) Key(img *engine.Image, shape engine.Shape) string {
	k := "img-" + strings.TrimPrefix(img.ID, "sha256:")
	if sh := shape.String(); sh != "" {
		k += "-" + sh
	}
	if e.cfg.Scope != "" {
		k += "@" + e.cfg.Scope
	}
	return k
}

// Name is the Cloud Functions id made for an image (lower case, ≤ 63
// chars); a function from the pool keeps its stub's name.
func (e *Fleet) Name(img *engine.Image, shape engine.Shape) string {
	h := strings.TrimPrefix(img.ID, "sha256:")
	if len(h) > 20 {
		h = h[:20]
	}
	name := e.cfg.Prefix + "-" + h
	if sh := shape.String(); sh != "" {
		name += "-" + strings.ToLower(sh)
	}
	return name
}

// Prepare starts making the function of img and shape if none exists,
// without waiting.
func (e *Fleet) Prepare(img *engine.Image, shape engine.Shape) {
	e.goBackground(func(ctx context.Context) {
		if _, err := e.getFunction(ctx, e.Key(img, shape)); err == nil {
			return
		}
		if _, err := e.claimFunction(ctx, img, shape); err != nil {
			e.log.Warn("prepare function", "image", img.ID, "err", err)
		}
	})
}

// ensureFunction returns the ready function for img, creating it once.
func (e *Fleet) ensureFunction(ctx context.Context, img *engine.Image, shape engine.Shape) (*engine.Function, error) {
	key := e.Key(img, shape)
	waited := false
	for {
		f, err := e.getFunction(ctx, key)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("get function %s: %w", key, err)
		}
		if err == nil {
			switch {
			case f.Status == engine.FunctionReady:
				return f, nil
			case f.Status == engine.FunctionCreating && time.Since(f.Created) < staleClaim:
				if err := e.waitFunction(ctx, key); err != nil {
					return nil, err
				}
				waited = true
				continue
			case f.Status == engine.FunctionFailed && waited:
				return nil, engine.Errorf(engine.KindInternal, "create function for image %s: %s", img.ID, f.Error)
			}
		}
		// Absent, failed before we came, or a stale claim: (re)create.
		if _, err := e.claimFunction(ctx, img, shape); err != nil {
			return nil, err
		}
	}
}

// waitFunction blocks until the function stops being "creating" here, or
// polls the store if another control plane creates it.
func (e *Fleet) waitFunction(ctx context.Context, key string) error {
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
func (e *Fleet) claimFunction(ctx context.Context, img *engine.Image, shape engine.Shape) (bool, error) {
	key := e.Key(img, shape)
	claimed := false
	_, err := e.updateFunction(ctx, key, func(f *engine.Function) (*engine.Function, error) {
		claimed = false
		if f != nil && (f.Status == engine.FunctionReady || (f.Status == engine.FunctionCreating && time.Since(f.Created) < staleClaim)) {
			return nil, nil
		}
		claimed = true
		return &engine.Function{Key: key, Name: e.Name(img, shape), Status: engine.FunctionCreating, Created: time.Now().UTC()}, nil
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
		e.createFunction(bg, img, shape, key)
	})
	return true, nil
}

// createFunction wraps the image, makes the function (from a pooled stub
// if one is ready) and records the result.
func (e *Fleet) createFunction(ctx context.Context, img *engine.Image, shape engine.Shape, key string) {
	name := e.Name(img, shape)
	start := time.Now()
	var url, wrapped string
	wrapped, err := e.cfg.Images.Wrap(ctx, img)
	wrapTook := time.Since(start)
	opts := ImageOptions{CPU: shape.CPU, Memory: shape.Memory}
	if e.cfg.Prewarm != nil && e.cfg.Prewarm(img) {
		opts.MinInstances = 1
	}
	pooled := false
	if err == nil {
		var pname, purl string
		if pname, purl, pooled = e.fromPool(ctx, key, wrapped, opts); pooled {
			name, url = pname, purl
		} else if p, ok := e.cfg.Functions.(Pooler); ok {
			err = e.retryQuota(ctx, "create function "+name, func() error { return p.CreateStub(ctx, name) })
			if err == nil {
				err = e.retryQuota(ctx, "set image of "+name, func() error {
					var err error
					url, err = p.SetImage(ctx, name, wrapped, opts)
					return err
				})
			}
		} else {
			err = e.retryQuota(ctx, "create function "+name, func() error {
				var err error
				url, err = e.cfg.Functions.Create(ctx, name, wrapped)
				return err
			})
		}
	}
	_, uerr := e.updateFunction(context.WithoutCancel(ctx), key, func(f *engine.Function) (*engine.Function, error) {
		if f == nil {
			f = &engine.Function{Key: key, Created: time.Now().UTC()}
		}
		f.Name, f.Image = name, wrapped
		if err != nil {
			f.Status, f.Error = engine.FunctionFailed, err.Error()
		} else {
			f.Status, f.URL, f.Error = engine.FunctionReady, url, ""
		}
		return f, nil
	})
	if err != nil {
		e.log.Error("create function failed", "function", name, "image", img.ID, "err", err)
	} else {
		e.log.Info("function ready", "function", name, "image", img.ID, "pooled", pooled, "prewarm", opts.MinInstances > 0, "wrap", wrapTook.String(), "took", time.Since(start).String())
	}
	if uerr != nil {
		e.log.Error("record function", "function", name, "err", uerr)
	}
}

// retryQuota runs call, and again with backoff while the cloud refuses it
// over quota (engine.ErrQuota), for at most QuotaRetry; then the error
// says so.
func (e *Fleet) retryQuota(ctx context.Context, what string, call func() error) error {
	deadline := time.Now().Add(e.cfg.QuotaRetry)
	wait := 200 * time.Millisecond
	for try := 1; ; try++ {
		err := call()
		if !errors.Is(err, engine.ErrQuota) {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: still over the cloud's API quota after %d tries in %s (raise the quota or lower the pool size): %w", what, try, e.cfg.QuotaRetry, err)
		}
		e.log.Warn("over quota; trying again", "call", what, "try", try, "wait", wait.String(), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up: %v)", what, err, ctx.Err())
		}
		wait = min(wait*2, 15*time.Second)
	}
}
