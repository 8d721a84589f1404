package engine

import (
	"context"
	"encoding/json"
	"io"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/sockerless/sockerless/agent/proto"
)

// Store keeps all state. Every method is atomic; implementations map each to
// one transaction, so two control planes on one store stay consistent.
type Store interface {
	// CreateContainer stores a new container and reserves its name in its
	// namespace. Returns ErrConflict if the name is taken. The ID must be
	// new (the engine's are 256 random bits): a store need not check it.
	CreateContainer(ctx context.Context, c *Container) error
	// GetContainer finds a container of namespace ns by full ID, name, or
	// unique ID prefix (in that order, as docker). Returns ErrNotFound, or
	// ErrAmbiguous for a prefix that matches several.
	GetContainer(ctx context.Context, ns, ref string) (*Container, error)
	// ListContainers returns the namespace's containers, newest first.
	ListContainers(ctx context.Context, ns string) ([]*Container, error)
	// UpdateContainer reads the container with full ID id, calls fn on it and
	// writes the result, all in one transaction (fn may run more than once).
	// An error from fn aborts and is returned as is. A changed Name is
	// re-reserved (ErrConflict if taken). Returns ErrNotFound.
	UpdateContainer(ctx context.Context, ns, id string, fn func(*Container) error) (*Container, error)
	// DeleteContainer removes the container, frees its name and drops its
	// logs. Returns ErrNotFound.
	DeleteContainer(ctx context.Context, ns, id string) error

	// PutImage stores or replaces an image's metadata (keyed by ID). A repo
	// tag moves to this image from any other image that had it.
	PutImage(ctx context.Context, img *Image) error
	// GetImage finds an image by full ID ("sha256:…"), ID without the
	// algorithm, unique ID prefix (≥ 1 hex char), exact repo tag or exact repo
	// digest ("name@sha256:…"). Returns ErrNotFound or ErrAmbiguous.
	GetImage(ctx context.Context, ref string) (*Image, error)
	// ListImages returns every image.
	ListImages(ctx context.Context) ([]*Image, error)
	// DeleteImage removes an image by full ID. Returns ErrNotFound.
	DeleteImage(ctx context.Context, id string) error
	// UntagImage takes the repo tag or digest ref from image id (docker rmi
	// of one of its names); the image stays. Returns ErrNotFound.
	UntagImage(ctx context.Context, id, ref string) error

	// GetFunction returns the function with key. Returns ErrNotFound.
	GetFunction(ctx context.Context, key string) (*Function, error)
	// UpdateFunction reads the function with key (nil if absent), calls fn
	// and stores what fn returns (nothing if nil), in one transaction.
	UpdateFunction(ctx context.Context, key string, fn func(*Function) (*Function, error)) (*Function, error)
	// ListFunctions returns every function.
	ListFunctions(ctx context.Context) ([]*Function, error)

	// AppendLogs stores entries after the container's last entry, assigning
	// their Seq (the container's LogSeq advances in the same transaction), and
	// records acked[stream] = seq for the agent streams given. Returns the
	// stored entries with Seq set. Returns ErrNotFound if the container is gone.
	AppendLogs(ctx context.Context, ns, id string, entries []LogEntry, acked map[uint32]uint64) ([]LogEntry, error)
	// AppendLogsUpdate is AppendLogs and UpdateContainer(fn) in one
	// transaction (a run's last output and its exit: one write), and
	// returns the stored entries and the updated container. fn may not
	// rename; an error from fn aborts both and is returned as is.
	AppendLogsUpdate(ctx context.Context, ns, id string, entries []LogEntry, acked map[uint32]uint64, fn func(*Container) error) ([]LogEntry, *Container, error)
	// ReadLogs returns up to limit entries with Seq > after, in order
	// (limit ≤ 0: all).
	ReadLogs(ctx context.Context, ns, id string, after uint64, limit int) ([]LogEntry, error)

	// AppendEvents stores events (Keys unique; any namespaces) in one
	// write. An event already stored under its Key is not stored twice.
	AppendEvents(ctx context.Context, evs []StoredEvent) error
	// ReadEvents returns the events of namespace ns with Key > after, in
	// Key order, at most limit (limit ≤ 0: all).
	ReadEvents(ctx context.Context, ns, after string, limit int) ([]StoredEvent, error)
	// PruneEvents deletes the events of namespace ns with Key < before.
	PruneEvents(ctx context.Context, ns, before string) error

	// Close releases the store.
	Close() error
}

// ImageSource resolves and reads images from registries.
type ImageSource interface {
	// Pull resolves ref (through the mirror map) and returns its metadata.
	// Returns a KindNotFound *Error if the registry has no such image.
	Pull(ctx context.Context, ref string) (*Image, error)
	// Wrap makes (or finds, by content hash) the wrapped image: img plus
	// the agent layer, with the agent as entrypoint, pushed to the functions
	// registry. Returns its reference pinned by digest.
	Wrap(ctx context.Context, img *Image) (string, error)
}

// ImageDistribution describes an image as its registry has it without
// pulling it (docker's GET /distribution/{name}/json); an ImageSource may
// implement it.
type ImageDistribution interface {
	Distribution(ctx context.Context, ref string) (*registry.DistributionInspect, error)
}

// ImageFiles reads an image's files; an ImageSource may implement it. The
// engine uses it to answer docker cp and archive stat for a container that
// has never run (it has no instance yet).
type ImageFiles interface {
	// Filesystem returns img's flattened filesystem as a tar stream (layers
	// applied in order, whiteouts removed), read as it is consumed.
	Filesystem(ctx context.Context, img *Image) (io.ReadCloser, error)
}

// Functions creates and invokes Cloud Functions.
type Functions interface {
	// Create makes function name running image (the wrapped image) and
	// returns its invocation URL once it is ready.
	Create(ctx context.Context, name, image string) (url string, err error)
	// Invoke POSTs inv to the function at url and returns when the POST
	// ends: when the agent answers (container removed, linger over), or the
	// instance failed or timed out (error).
	Invoke(ctx context.Context, url string, inv proto.Invocation) error
	// Delete removes function name.
	Delete(ctx context.Context, name string) error
}

// Fleet keeps the functions containers run on: one per image, made once
// and shared (package fleet).
type Fleet interface {
	// Key is the store key of the function of img and shape
	// (Container.Function): one function per image and instance shape.
	Key(img *Image, shape Shape) string
	// Prepare starts making that function, if there is none, without
	// waiting: a docker create makes it while the client gets ready to
	// start.
	Prepare(img *Image, shape Shape)
	// Acquire waits until that function is ready, making it once however
	// many starts ask at a time, and returns a lease on it for one
	// invocation.
	Acquire(ctx context.Context, img *Image, shape Shape) (Lease, error)
}

// Lease is one invocation's hold on a function: a function with a lease
// is in use, and garbage collection of unused functions spares it.
type Lease interface {
	// URL is where the function's invocations are POSTed.
	URL() string
	// Release ends the hold; later calls do nothing.
	Release()
}

// Ports binds published ports (docker run -p, -P) on the machine of the
// client a container was created through, and releases them (package
// publish).
type Ports interface {
	// Publish binds the published ports of c (see Published) for run on
	// the machine of c.Client and returns the bindings made, as
	// NetworkSettings.Ports shows them. It is idempotent for one run. A
	// port that cannot be bound is an *Error with Docker's message.
	Publish(ctx context.Context, c *Container, run uint32) (network.PortMap, error)
	// Unpublish releases the ports published for run, or an earlier run,
	// of c; ports of a later run stay.
	Unpublish(ctx context.Context, c *Container, run uint32) error
}

// Network is the network plane's view of what agents report (networks,
// addresses and names: the control plane's network objects).
type Network interface {
	// Listening records the TCP ports the processes of container id
	// listen on (proto.Listening), whenever they change.
	Listening(ctx context.Context, ns, id string, ports []int)
}

// Agents is the hub that function agents dial into.
type Agents interface {
	// Session waits until the agent of container id is connected and
	// returns its session; it returns ctx's error if it never connects.
	Session(ctx context.Context, id string) (AgentSession, error)
	// Connected reports whether the agent of container id is connected now.
	Connected(id string) bool
}

// AgentSession drives one connected agent.
type AgentSession interface {
	// Start runs the container's process as run number run and returns its
	// pid once it runs. If the process cannot start, the agent reports an
	// Exit, and Start returns a KindInvalid *Error with the agent's message.
	Start(ctx context.Context, st proto.Start) (pid int, err error)
	// Signal delivers sig to the running process.
	Signal(ctx context.Context, sig int) error
	// SignalAll delivers sig to every process of the container (execs,
	// children, orphans), as docker pause (SIGSTOP) and unpause (SIGCONT)
	// freeze and thaw a container.
	SignalAll(ctx context.Context, sig int) error
	// Shutdown tells the agent the container is removed: kill the process,
	// end the instance.
	Shutdown(ctx context.Context) error
}

// StreamSession is the part of an agent session that carries execs, stdin
// and terminal sizes. A hub that lacks it makes those operations 501.
type StreamSession interface {
	AgentSession
	// Exec runs an extra process (docker exec) and returns its pid once it
	// runs. If it cannot start, the agent reports an ExecExit, which is
	// stored first, and Exec returns a KindInvalid *Error with its message.
	Exec(ctx context.Context, e proto.ExecStart) (pid int, err error)
	// Stdin sends input to a stdin stream (proto.StreamStdin for the main
	// process, ExecStart.Stdin for an exec).
	Stdin(ctx context.Context, stream uint32, p []byte) error
	// CloseStdin closes a stdin stream.
	CloseStdin(ctx context.Context, stream uint32) error
	// Resize sets the terminal size of the main process or an exec.
	Resize(ctx context.Context, r proto.Resize) error
	// Request asks the agent for information (proto.RequestTop, …) and
	// returns the JSON body of its answer.
	Request(ctx context.Context, kind string, args []string) (json.RawMessage, error)
	// Network replaces the container's network view (proto.TypeNetwork);
	// a view for the first start goes in proto.Start instead.
	Network(ctx context.Context, v proto.NetworkView) error
}

// Networks is the network plane (networks, addresses, names, the views
// agents apply) as the container lifecycle uses it. A nil Networks in
// Config leaves containers on the instance's network as it is.
type Networks interface {
	Network
	// Prepare checks the network settings of a container being created
	// (HostConfig.NetworkMode, HostConfig.Links, the endpoints of the
	// create request) and fills c.Networks. Errors: KindInvalid for a mode
	// or option Sockerless does not carry out, KindNotFound for a missing
	// network or linked container.
	Prepare(ctx context.Context, c *Container, endpoints map[string]*network.EndpointSettings) error
	// Up gives container c addresses on its networks as it starts (or
	// refreshes them: it is idempotent) and returns the view its agent
	// applies before the process starts; its peers learn of it.
	Up(ctx context.Context, c *Container) (*proto.NetworkView, error)
	// Down releases the addresses of container c (its run ended, or it
	// is removed); its peers learn of it.
	Down(ctx context.Context, c *Container) error
	// Refresh sends container id's current view to its agent again (it
	// reconnected, possibly to a new control plane process).
	Refresh(ctx context.Context, ns, id string) error
}

// FinalRemover is implemented by stores where each write is a round trip
// (Firestore): the last exit of an --rm container and its removal are one
// write. AppendLogsRemove is AppendLogsUpdate that, when remove holds for
// the container as fn left it, also deletes the container in the same
// write, and keeps its final state and output for a while: ReadLogs reads
// that output (its followers, here and on other control planes, get the
// rest of it) and Removed returns that state (its waiters get its exit).
// removed reports that it did; when it does not (the store decides: it
// may take more than one write), it is AppendLogsUpdate (UpdateContainer
// without entries or acks) and the caller removes the container as usual.
type FinalRemover interface {
	AppendLogsRemove(ctx context.Context, ns, id string, entries []LogEntry, acked map[uint32]uint64, fn func(*Container) error, remove func(*Container) bool) (out []LogEntry, c *Container, removed bool, err error)
	// Removed returns the final state of container id of namespace ns
	// that AppendLogsRemove removed lately, or ErrNotFound.
	Removed(ctx context.Context, ns, id string) (*Container, error)
}

// KnownContainers is implemented by stores that keep the last state of
// each container this process read or wrote (Firestore): KnownContainer
// returns it without a read, and without a promise that it is current.
// Only a caller whose change is written on that state with the
// precondition that it still is (UpdateContainer does so on the known
// state, and decides again on the record as it is when it is not) may
// decide on it.
type KnownContainers interface {
	KnownContainer(ns, id string) (*Container, bool)
}

// ContainerWatcher is implemented by stores that other control planes
// write too (Firestore): WatchContainer follows the record of container id
// of namespace ns until ctx ends and calls changed after each change this
// process did not make itself (the engine notifies its own). It returns
// when ctx ends, or with an error if the store cannot follow (the engine
// then polls). A store only this process writes (bolt) does not implement
// it: the engine's in-process notifications suffice.
type ContainerWatcher interface {
	WatchContainer(ctx context.Context, ns, id string, changed func()) error
}

// EventWatcher is implemented by stores that other control planes write
// events to (Firestore): WatchEvents calls fn with namespace ns's events
// stored with keys after after, by any control plane, as they are stored
// (events may come again after a reconnect; the engine drops repeats). It
// returns when ctx ends, or with an error if the store cannot follow (the
// engine opens it again). bolt, written by one process, does not
// implement it.
type EventWatcher interface {
	WatchEvents(ctx context.Context, ns, after string, fn func([]StoredEvent)) error
}

// BootLogs reads what a container's function instances wrote to the
// platform's log (Cloud Logging), for `docker logs` of a container whose
// agent never called back and so stored no output (DESIGN decision 8).
type BootLogs interface {
	BootLogs(ctx context.Context, c *Container) ([]LogEntry, error)
}
