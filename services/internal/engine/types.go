package engine

import (
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// DefaultNamespace is the namespace of requests that carry no team identity
// (the dev socket and the single admin token).
const DefaultNamespace = "default"

// Container is the stored record of one container. Config is the merged
// configuration (image defaults filled in), as docker inspect shows it.
type Container struct {
	ID         string                `json:"id"`
	Namespace  string                `json:"namespace"`
	Name       string                `json:"name"` // without the leading "/"
	Created    time.Time             `json:"created"`
	ImageRef   string                `json:"imageRef"` // as the user wrote it
	ImageID    string                `json:"imageId"`  // "sha256:…" of the image config
	Config     *container.Config     `json:"config"`
	HostConfig *container.HostConfig `json:"hostConfig"`
	State      State                 `json:"state"`

	// Function is the key of the function the container runs on.
	Function string `json:"function,omitempty"`
	// SecretHash is the hex SHA-256 of the per-container agent secret.
	SecretHash string `json:"secretHash,omitempty"`
	// Run counts starts of this container; the agent tags exits with it.
	Run uint32 `json:"run,omitempty"`
	// ExitedRun is the last run whose exit is stored; Run > ExitedRun while
	// a run is starting or running.
	ExitedRun uint32 `json:"exitedRun,omitempty"`
	// Instance is "up" while a function instance serves the container,
	// "gone" once it has ended.
	Instance string `json:"instance,omitempty"`
	// StartedBy names the control plane process that is starting the
	// container, until StartClaim: its agent, which dials the service's
	// one address, is refused by any other process sharing the store
	// (as during a redeploy) so that it reaches the one waiting for it.
	StartedBy  string    `json:"startedBy,omitempty"`
	StartClaim time.Time `json:"startClaim,omitempty"`
	// LogSeq is the sequence number of the last stored log entry.
	LogSeq uint64 `json:"logSeq,omitempty"`
	// LogBytes counts the bytes of the stored log entries (the log
	// quota of its namespace counts them).
	LogBytes int64 `json:"logBytes,omitempty"`
	// Usage is what the container's function instances used (its cost).
	Usage Usage `json:"usage,omitzero"`
	// Acked is, per agent stream, the last data sequence number stored; it
	// lets the hub drop frames re-sent after a reconnect.
	Acked map[uint32]uint64 `json:"acked,omitempty"`
	// RestartCount counts restarts made by the restart policy.
	RestartCount int `json:"restartCount,omitempty"`
	// ManuallyStopped is set by docker stop (and kill with SIGKILL): the
	// restart policy leaves the container alone until it is started again.
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// KeepOnExit is set by docker restart while it stops the container:
	// the end of that run does not remove an --rm container (docker keeps
	// AutoRemove off during a restart's stop). The next start clears it.
	KeepOnExit bool `json:"keepOnExit,omitempty"`
	// Execs are the container's exec sessions, by ID.
	Execs map[string]*Exec `json:"execs,omitempty"`
	// NextStream is the next agent stream number free for an exec.
	NextStream uint32 `json:"nextStream,omitempty"`
	// Networks are the networks the container is attached to, by network
	// name, with the settings given at create or connect (NetworkID,
	// aliases, links, a static address, a MAC address). Its addresses are
	// the network plane's, kept with each network while it runs.
	Networks map[string]*network.EndpointSettings `json:"networks,omitempty"`
	// Warnings are what the create request was warned about (see
	// options.go); they are answered once and not stored.
	Warnings []string `json:"-"`
	// PendingUploads are docker cp uploads into the container before its
	// first start, in order; they are extracted when it starts.
	PendingUploads []PendingUpload `json:"pendingUploads,omitempty"`
	// Mounts are the container's volumes and tmpfs mounts (mounts.go).
	Mounts []Mount `json:"mounts,omitempty"`
	// Client names the client side the container was created through,
	// whose machine binds its published ports: a forwarder's client ID,
	// the --dev control plane's own socket, or "" (plain TCP: none).
	Client string `json:"client,omitempty"`
	// Ports are the host ports the current run published, as
	// NetworkSettings.Ports shows them; nil when it does not run.
	Ports network.PortMap `json:"ports,omitempty"`
	// LinkEnv are the variables of the current run's legacy links
	// (--link on the default bridge), which its process and execs get.
	LinkEnv []string `json:"linkEnv,omitempty"`
}

// PendingUpload is a docker cp into a container that has never run. Its
// tar is kept in the container's log, in chunks under a stream number of
// its own (never shown by logs or attach), so it is as durable as the rest
// of the state and never held in memory; the agent extracts it right after
// the instance connects, before the process starts.
type PendingUpload struct {
	// Dir is the destination directory, symlinks resolved.
	Dir string `json:"dir"`
	// Stream is the log stream holding the tar; First and Last bound the
	// log sequence numbers of its chunks.
	Stream uint32 `json:"stream"`
	First  uint64 `json:"first"`
	Last   uint64 `json:"last"`
	Size   int64  `json:"size"`
}

// Exec is one docker exec session of a container. Its output is stored in
// the container's log under its own stream numbers, which docker logs and
// attach never show.
type Exec struct {
	ID           string   `json:"id"`
	Cmd          []string `json:"cmd"`
	Env          []string `json:"env,omitempty"`
	WorkingDir   string   `json:"workingDir,omitempty"`
	User         string   `json:"user,omitempty"`
	Privileged   bool     `json:"privileged,omitempty"`
	Tty          bool     `json:"tty,omitempty"`
	AttachStdin  bool     `json:"attachStdin,omitempty"`
	AttachStdout bool     `json:"attachStdout,omitempty"`
	AttachStderr bool     `json:"attachStderr,omitempty"`
	DetachKeys   string   `json:"detachKeys,omitempty"`
	// Probe marks a health check or archive run: not listed, no events.
	Probe bool `json:"probe,omitempty"`
	// AnyState lets it run while the container's instance is up even if
	// its process has exited (docker cp of an exited container).
	AnyState bool      `json:"anyState,omitempty"`
	Stdout   uint32    `json:"stdout"`
	Stderr   uint32    `json:"stderr"`
	Stdin    uint32    `json:"stdin"`
	Started  bool      `json:"started,omitempty"`
	Running  bool      `json:"running,omitempty"`
	Pid      int       `json:"pid,omitempty"`
	ExitCode *int      `json:"exitCode,omitempty"`
	Error    string    `json:"error,omitempty"`
	Created  time.Time `json:"created"`
}

// Container states, as docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// State is a container's run state.
type State struct {
	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	// Health is the health check state of a container that has one.
	Health *container.Health `json:"health,omitempty"`
}

// Image is the stored metadata of a pulled image.
type Image struct {
	ID          string            `json:"id"` // "sha256:…" of the config blob
	RepoTags    []string          `json:"repoTags,omitempty"`
	RepoDigests []string          `json:"repoDigests,omitempty"`
	Created     time.Time         `json:"created"`
	Size        int64             `json:"size"`
	OS          string            `json:"os"`
	Arch        string            `json:"arch"`
	Config      *container.Config `json:"config"`
	// Source is the resolved remote reference it was pulled from (after the
	// mirror map), pinned by digest; a loaded, imported or committed image
	// lives in the deployment's image repository.
	Source string `json:"source"`
	// Layers are the image's layers, bottom first.
	Layers []ImageLayer `json:"layers,omitempty"`
	// Parent is the image a committed image was made from.
	Parent        string `json:"parent,omitempty"`
	Comment       string `json:"comment,omitempty"`
	Author        string `json:"author,omitempty"`
	Container     string `json:"container,omitempty"`
	DockerVersion string `json:"dockerVersion,omitempty"`
	// ContainerConfig is the configuration of the container a committed
	// image was made from.
	ContainerConfig *container.Config `json:"containerConfig,omitempty"`
	// Tagged is when a name was last given to the image.
	Tagged time.Time `json:"tagged,omitempty"`
	// Seen are the namespaces that pulled, loaded, committed or tagged the
	// image: only they see it (its content is shared; see ImageNamespace).
	// Empty: every namespace (images stored before namespaces).
	Seen []string `json:"seen,omitempty"`
	// TagSeen are, per name in RepoTags, the namespaces that gave or
	// pulled it: only they see the name (none recorded: everyone).
	TagSeen map[string][]string `json:"tagSeen,omitempty"`
}

// ImageLayer is one layer of an image: its uncompressed content's digest
// (docker's RootFS.Layers) and its size in the registry.
type ImageLayer struct {
	DiffID string `json:"diffId"`
	Size   int64  `json:"size"`
}

// Function is a Cloud Function made for one image (+ resource shape), shared
// by every container of that image.
type Function struct {
	Key string `json:"key"`
	// Name is the function's short name in the project and region.
	Name string `json:"name"`
	// Image is the wrapped image (user image + agent layer), by digest.
	Image string `json:"image"`
	// URL is where invocations are POSTed.
	URL string `json:"url,omitempty"`
	// Status is "creating", "ready" or "failed".
	Status  string    `json:"status"`
	Error   string    `json:"error,omitempty"`
	Created time.Time `json:"created"`
}

// Function statuses.
const (
	FunctionCreating = "creating"
	FunctionReady    = "ready"
	FunctionFailed   = "failed"
)

// Log streams of a container's output, as in docker's multiplexed stream.
const (
	Stdout = 1
	Stderr = 2
)

// LogEntry is a piece of a container's output.
type LogEntry struct {
	Seq    uint64    `json:"seq"` // assigned by the store, from 1
	Stream int       `json:"stream"`
	Time   time.Time `json:"time"`
	Data   []byte    `json:"data"`
}

// StoredEvent is a docker event as the store keeps it, for docker events
// --since and for streams resumed after a restart.
type StoredEvent struct {
	// Key orders events: the time in nanoseconds (20 digits), then what
	// makes it unique (see eventKey).
	Key       string         `json:"key"`
	Namespace string         `json:"ns"`
	Message   events.Message `json:"message"`
}

// MergeAcked raises c.Acked to the sequence numbers of acked, stream by
// stream (a store keeps the highest stored seq per agent stream).
func (c *Container) MergeAcked(acked map[uint32]uint64) {
	for stream, seq := range acked {
		if c.Acked == nil {
			c.Acked = map[uint32]uint64{}
		}
		if seq > c.Acked[stream] {
			c.Acked[stream] = seq
		}
	}
}
