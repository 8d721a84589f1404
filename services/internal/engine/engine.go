package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockerless/sockerless/services/internal/ttlcache"
)

// Config wires the engine to its adapters.
type Config struct {
	Store  Store
	Images ImageSource
	// Functions invokes functions; Fleet makes and collects them. A nil
	// Fleet refuses every start.
	Functions Functions
	Fleet     Fleet
	Agents    Agents
	// Ports binds published ports; nil refuses them at create.
	Ports Ports
	// Networks is the network plane; nil leaves containers without
	// network views.
	Networks Networks
	// Volumes keeps volume records; nil refuses containers with volumes.
	Volumes Volumes
	// CallbackURL is the hub's base URL as function instances reach it
	// (ws:// or wss://).
	CallbackURL string
	// Linger is how long an instance stays after its process exited.
	Linger time.Duration
	// BootTimeout bounds the time from invocation to the agent's call back.
	BootTimeout time.Duration
	// PollInterval, if positive, wakes every waiter (logs -f, attach, wait)
	// this often to read the store again: with a store that other control
	// planes write too (Firestore during a redeploy), changes they make
	// reach this one's clients. Zero: only this process's changes wake.
	PollInterval time.Duration
	// BootLogs reads the platform's log of a container whose agent never
	// called back; nil: such a container's logs are empty.
	BootLogs BootLogs
	// Quota limits what each namespace may run and keep (zero fields:
	// no limit).
	Quota Quota
	// Prices turn usage into a cost estimate (see Cost).
	Prices Prices
	// Ledger keeps the usage of ended instances per namespace (GET
	// /sockerless/v1/usage); nil keeps it only on each container.
	Ledger UsageLedger
	Logger *slog.Logger
}

// Engine carries out the Docker container lifecycle on functions.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	notify *notifier
	events *eventBus

	mu      sync.Mutex
	invokes map[string]*invocation // by container ID
	// claims are this process's start claims being stored, by the hash of
	// their instance's secret, closed once decided; lostClaims the hashes
	// of those that lost (see awaitClaim).
	claims     map[string]chan struct{}
	lostClaims *ttlcache.Cache[string, struct{}]
	// watches are the store watches of containers with local waiters.
	watches map[string]*watch
	// images are image records read lately, by ID (imageByID).
	images *ttlcache.Cache[string, *Image]
	// named are the images names gave creates lately (imageToCreate).
	named   *ttlcache.Cache[string, *Image]
	removed map[string]*removal // this process's recent removals of containers
	// followers counts output readers per container; drained is closed
	// when a container's count drops to zero (see awaitFollowers).
	followers map[string]int
	drained   map[string]chan struct{}
	// starting is, per container, the run this process is starting and
	// startedRun the last run whose "start" event is out: the exit the hub
	// stores races the Start that records the run running, and docker's
	// order is start before die.
	starting   map[string]uint32
	startedRun map[string]uint32
	// diedRun is, per container, the last run whose "die" event is out:
	// an --rm container removed with its exit has it published before
	// that write (storeExit), and a write that fails is retried.
	diedRun map[string]uint32
	// exits are, per container, the last run whose exit the hub has
	// received and the last it has stored; arrivals wakes Start waiting
	// for them (exitFollows).
	exits    map[string]exitMark
	arrivals *notifier
	// netDownRun is, per container, the run whose end this process has
	// released the addresses of: removing the container after that run
	// has none to release (and reads no network to find out).
	netDownRun map[string]uint32
	// netDowns are the address releases under way in the background
	// (netDownAsync), closed when done.
	netDowns map[string]chan struct{}
	wg       sync.WaitGroup
	// sizer measures containers' files for container prune; may be nil.
	sizer FilesSizer
	// process names this engine among control plane processes sharing
	// the store (Container.StartedBy).
	process string
	ctx     context.Context // lives until Close; owns background work
	cancel  context.CancelFunc
}

// invocation is one open POST to a function instance serving a container.
type invocation struct {
	lease  Lease // on the function, released when the invocation ends
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done closes
	// lost marks the invocation of a start whose claim lost: no instance
	// of the container's, so its end is not the container's business.
	lost atomic.Bool
}

// New returns an engine. Close stops its background work.
func New(cfg Config) *Engine {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 2 * time.Minute
	}
	if cfg.Fleet == nil {
		cfg.Fleet = noFleet{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:     cfg,
		log:     cfg.Logger,
		notify:  newNotifier(),
		events:  newEventBus(),
		invokes: map[string]*invocation{},
		watches: map[string]*watch{},
		images:  ttlcache.New[string, *Image](imageCacheTTL),
		named:   ttlcache.New[string, *Image](namedTTL),
		removed: map[string]*removal{},

		followers:  map[string]int{},
		starting:   map[string]uint32{},
		startedRun: map[string]uint32{},
		diedRun:    map[string]uint32{},
		exits:      map[string]exitMark{},
		arrivals:   newNotifier(),
		netDownRun: map[string]uint32{},
		netDowns:   map[string]chan struct{}{},
		drained:    map[string]chan struct{}{},
		claims:     map[string]chan struct{}{},
		lostClaims: ttlcache.New[string, struct{}](lostClaimTTL),
		process:    randomHex(8),
		ctx:        ctx,
		cancel:     cancel,
	}
	e.goBackground(e.persistEvents)
	if cfg.PollInterval > 0 {
		e.goBackground(func(ctx context.Context) {
			t := time.NewTicker(cfg.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					e.notify.notifyAll()
				}
			}
		})
	}
	return e
}

// Close ends background work: open invocations are cancelled (their
// instances end when their agents notice), then waits for it to finish.
func (e *Engine) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

// go runs f as background work owned by the engine.
func (e *Engine) goBackground(f func(ctx context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f(e.ctx)
	}()
}

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // cannot happen on Linux
	}
	return hex.EncodeToString(b)
}

// FilesSizer measures the files a container added or changed (docker's
// SizeRw) in its live instance; 0 when it has none.
type FilesSizer interface {
	SizeRw(ctx context.Context, ns string, c *Container) int64
}

// SetFilesSizer connects what measures containers' files (the image
// operations, which are made after the engine); without one, container
// prune counts only what the store frees.
func (e *Engine) SetFilesSizer(f FilesSizer) { e.sizer = f }

// SetAgents connects the hub; the hub needs the engine's AgentBackend, so
// it is made after the engine. Call before serving.
func (e *Engine) SetAgents(a Agents) { e.cfg.Agents = a }

// SetNetworks connects the network plane, which needs the engine's events
// and so is made after it. Call before serving.
func (e *Engine) SetNetworks(n Networks) { e.cfg.Networks = n }

// SetPorts connects the published-port plane, which reads the engine's
// store and dials through the hub, so it is made after both. Call before
// serving.
func (e *Engine) SetPorts(p Ports) { e.cfg.Ports = p }

// noFleet is the Fleet of an engine configured without one: containers
// are created, and refused at start.
type noFleet struct{}

func (noFleet) Key(img *Image, _ Shape) string { return "img-" + strings.TrimPrefix(img.ID, "sha256:") }
func (noFleet) Prepare(*Image, Shape)          {}
func (noFleet) Acquire(context.Context, *Image, Shape) (Lease, error) {
	return nil, Errorf(KindInternal, "no functions backend is configured")
}
