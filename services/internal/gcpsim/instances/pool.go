package instances

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
	"github.com/sockerless/sockerless/services/internal/gcpsim/run"
)

var (
	// errNoInstance: every instance is busy and no more may start.
	errNoInstance = errors.New("no available instance")
	// errRetired: the revision no longer serves, or gcpsim is shutting down.
	errRetired = errors.New("revision is not serving")
)

// startError wraps why a new instance could not start.
type startError struct{ err error }

func (e *startError) Error() string { return "instance failed to start: " + e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// pool holds the instances of one revision.
type pool struct {
	m   *Manager
	key string

	imgMu sync.Mutex
	img   *image

	mu        sync.Mutex
	rev       *run.Revision
	instances map[string]*instance
	retired   bool
	wake      chan struct{} // closed and replaced on every change
}

func newPool(m *Manager, key string, rev *run.Revision) *pool {
	return &pool{m: m, key: key, rev: rev, instances: map[string]*instance{}, wake: make(chan struct{})}
}

// image returns the revision's unpacked image, pulling it on first use (as
// Cloud Run resolves a revision's image digest once).
func (p *pool) image(ctx context.Context) (*image, error) {
	p.imgMu.Lock()
	defer p.imgMu.Unlock()
	if p.img != nil {
		return p.img, nil
	}
	p.mu.Lock()
	ref := p.rev.Image
	p.mu.Unlock()
	img, err := p.m.images.get(ctx, ref)
	if err != nil {
		return nil, err
	}
	p.img = img
	return img, nil
}

// broadcastLocked wakes every waiter.
func (p *pool) broadcastLocked() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// acquire returns an instance with a free request slot, reserving it:
// an idle or not fully busy one (reused), else a new one (cold start), else
// it waits until one frees up or the queue timeout passes (errNoInstance).
func (p *pool) acquire(ctx context.Context, rev *run.Revision) (in *instance, reused bool, err error) {
	queue := time.NewTimer(p.m.cfg.QueueTimeout)
	defer queue.Stop()
	for {
		p.mu.Lock()
		if p.retired {
			p.mu.Unlock()
			return nil, false, errRetired
		}
		p.rev = rev
		for _, in := range p.instances {
			if in.listening && !in.stopping && !in.hasExited() && in.active < rev.Concurrency {
				in.active++
				if in.idleTimer != nil {
					in.idleTimer.Stop()
					in.idleTimer = nil
				}
				p.mu.Unlock()
				return in, true, nil
			}
		}
		if p.liveLocked() < rev.MaxInstances {
			in = p.m.newInstance(p, rev)
			if in == nil {
				p.mu.Unlock()
				return nil, false, errRetired
			}
			in.active = 1
			p.instances[in.id] = in
			p.mu.Unlock()
			go in.run(p.m.ctx)
			select {
			case <-in.ready:
				if in.startErr != nil {
					return nil, false, &startError{in.startErr}
				}
				return in, false, nil
			case <-ctx.Done():
				p.release(in)
				return nil, false, ctx.Err()
			}
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-queue.C:
			return nil, false, errNoInstance
		}
	}
}

// liveLocked counts the instances that are not stopping: those count
// toward max instances.
func (p *pool) liveLocked() int {
	n := 0
	for _, in := range p.instances {
		if !in.stopping {
			n++
		}
	}
	return n
}

// release returns a request slot of in. An instance left without requests
// becomes idle (and stops after the idle timeout), or stops at once if its
// revision is retired or it was marked stopping.
func (p *pool) release(in *instance) {
	p.mu.Lock()
	in.active--
	stop := false
	if in.active == 0 && !in.removed {
		if p.retired || in.stopping {
			in.stopping, stop = true, true
		} else {
			in.idleTimer = time.AfterFunc(p.m.cfg.IdleTimeout, func() { p.expire(in) })
		}
	}
	p.broadcastLocked()
	p.mu.Unlock()
	if stop {
		in.stop()
	}
}

// ensureMin starts instances until the revision has its min instances.
func (p *pool) ensureMin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retired {
		return
	}
	for n := p.rev.MinInstances - p.liveLocked(); n > 0; n-- {
		in := p.m.newInstance(p, p.rev)
		if in == nil {
			return
		}
		p.instances[in.id] = in
		go in.run(p.m.ctx)
	}
}

// expire stops an instance that stayed idle for the idle timeout, unless
// the revision's min instances need it.
func (p *pool) expire(in *instance) {
	p.mu.Lock()
	stop := in.active == 0 && !in.removed && !in.stopping && p.liveLocked() > p.rev.MinInstances
	if stop {
		in.stopping = true
		p.broadcastLocked()
	}
	p.mu.Unlock()
	if stop {
		p.m.logger.Debug("instance idle timeout", "instance", in.id, "revision", in.rev.Name)
		in.stop()
	}
}

// markListening makes a started instance available.
func (p *pool) markListening(in *instance) {
	p.mu.Lock()
	in.listening = true
	p.broadcastLocked()
	p.mu.Unlock()
}

// removeInstance forgets an instance whose process has ended; one that
// had served is replaced if the revision keeps min instances (one that
// failed to start is not, or a broken image would start forever).
func (p *pool) removeInstance(in *instance) {
	p.mu.Lock()
	delete(p.instances, in.id)
	in.removed = true
	if in.idleTimer != nil {
		in.idleTimer.Stop()
	}
	p.broadcastLocked()
	refill := in.listening && p.rev.MinInstances > 0
	p.mu.Unlock()
	if refill {
		p.ensureMin()
	}
}

// retire stops serving: idle instances stop now, busy ones when their
// requests end (force: busy ones too).
func (p *pool) retire(force bool) {
	p.mu.Lock()
	p.retired = true
	var stop []*instance
	for _, in := range p.instances {
		if in.active == 0 || force {
			in.stopping = true
			stop = append(stop, in)
		}
	}
	p.broadcastLocked()
	p.mu.Unlock()
	for _, in := range stop {
		in.stop()
	}
}

// newInstance makes an instance of p (not started) and registers its
// lifecycle goroutine with the manager; nil if the manager is closing.
func (m *Manager) newInstance(p *pool, rev *run.Revision) *instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.wg.Add(1)
	id := "gcpsim-" + resname.RandomHex(8)
	return &instance{
		id: id, rev: rev, m: m, pool: p,
		dir:      m.instanceDir(id),
		launched: make(chan struct{}),
		ready:    make(chan struct{}),
		exited:   make(chan struct{}),
		gone:     make(chan struct{}),
	}
}
