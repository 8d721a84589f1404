package instnet

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
)

// errPoolClosed: the pool is closed.
var errPoolClosed = errors.New("instance networks: closed")

// Pool makes the networks of instances, each in a directory of its own
// under one directory, all linked to one egress namespace with one pasta
// (made with the first network, in dir/egress). With pasta it keeps one
// network made ahead: linking it to the egress namespace takes two runs
// of ip(8), a few milliseconds (more under load), which a starting
// instance would otherwise wait for; a namespace alone takes about a
// millisecond.
type Pool struct {
	dir    string
	cfg    Config
	logger *slog.Logger
	wg     sync.WaitGroup // the goroutine making the spare

	mu        sync.Mutex
	spare     *Net
	making    bool
	closed    bool
	egress    *egress // started with the first network
	egressErr error   // why egress could not start
}

// NewPool removes what networks under dir a gcpsim that ended without
// cleaning up left behind (pasta processes, namespaces), and returns a
// pool making new ones there with cfg (cfg.HostPorts are not used: each
// Open names its own).
func NewPool(dir string, cfg Config, logger *slog.Logger) (*Pool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("instance networks: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("instance networks: %w", err)
	}
	for _, e := range entries {
		if err := removeLeftovers(filepath.Join(dir, e.Name())); err != nil {
			logger.Warn("remove leftover instance network", "dir", e.Name(), "err", err)
		} else {
			logger.Info("removed leftover instance network", "dir", e.Name())
		}
	}
	// The first network is made on demand: a gcpsim that starts no
	// instance starts no pasta.
	return &Pool{dir: dir, cfg: cfg, logger: logger}, nil
}

// Open returns the network of a new instance, whose relays join hostPorts
// and the loopback resolvers of the host's resolver configuration as it
// is now: the network made ahead if there is one (its link to the egress
// namespace may still be setting up), else a new one. It does not make the next one ahead: call
// Refill once the instance has started.
func (p *Pool) Open(hostPorts []int) (*Net, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errPoolClosed
	}
	n := p.spare
	p.spare = nil
	p.mu.Unlock()
	if n == nil {
		var err error
		if n, err = p.create(); err != nil {
			return nil, err
		}
	}
	if err := n.attach(hostPorts, p.cfg.ResolvConf); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

func (p *Pool) create() (*Net, error) {
	eg, err := p.sharedEgress()
	return create(filepath.Join(p.dir, "net-"+resname.RandomHex(8)), eg, err)
}

// sharedEgress is the pool's egress namespace, started on first use; nil
// without pasta (with the error that says why).
func (p *Pool) sharedEgress() (*egress, error) {
	if p.cfg.Pasta == "" {
		return nil, ErrEgressOff
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.egress == nil && p.egressErr == nil && !p.closed {
		p.egress, p.egressErr = startEgress(filepath.Join(p.dir, egressDir), p.cfg.Pasta)
		if p.egressErr != nil {
			p.logger.Warn("instances have no internet egress", "err", p.egressErr)
		}
	}
	if p.egress == nil {
		return nil, p.egressErr
	}
	return p.egress, nil
}

// Refill makes a network ahead in the background if there is none (with
// pasta only). Call it when no instance is starting on the network taken
// last: setting up the next one competes for the CPU with an instance's
// start (measured with a pasta per network: +15–25 ms on an instance's
// 50 ms cold start on 2 cores).
func (p *Pool) Refill() {
	if p.cfg.Pasta == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.making || p.spare != nil {
		return
	}
	p.making = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		n, err := p.create()
		p.mu.Lock()
		p.making = false
		keep := err == nil && !p.closed
		if keep {
			p.spare = n
		}
		p.mu.Unlock()
		switch {
		case err != nil:
			p.logger.Warn("make an instance network ahead", "err", err)
		case !keep:
			_ = n.Close()
		}
	}()
}

// Close removes the network made ahead and the egress namespace; the
// instances' own networks are theirs to close, before (their links go
// with the egress namespace).
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	n := p.spare
	p.spare = nil
	p.mu.Unlock()
	p.wg.Wait()
	if n != nil {
		_ = n.Close()
	}
	p.mu.Lock()
	eg := p.egress
	p.mu.Unlock()
	if eg != nil {
		if err := eg.stop(); err != nil {
			p.logger.Warn("remove the egress namespace", "err", err)
		}
	}
}
