// Package proto is the wire protocol between the in-function agent and the
// control plane's agent hub. It is the only package both sides import.
//
// One WebSocket carries everything for one container. Every WebSocket message
// is one binary Frame: a fixed 21-byte header followed by a payload. Control
// frames carry JSON payloads; data frames carry raw bytes.
//
// Flow control is credit based and per stream: the agent keeps at most Window
// bytes of a stream in flight (sent but not acknowledged). The hub acknowledges
// a data frame only after the bytes are stored, so an acknowledgement means
// both "persisted" and "send more". A slow control plane therefore slows the
// process's writes; nothing is ever dropped.
//
// Input (TypeStdin) is flow controlled the other way, by credits: an agent
// that says Hello.StdinCredit returns a TypeStdinCredit for every byte of a
// stdin stream it has consumed (written to the process, extracted, or
// dropped), and the hub keeps at most Window bytes of a stdin stream sent
// but not credited. A process that does not read its stdin, or a slow
// archive extraction, therefore slows the client's upload instead of
// growing the agent's (or the control plane's) memory. Credits are per
// connection: after a reconnect the hub starts again from a full window
// (stdin in flight on a dropped connection is lost, as it always was).
package proto

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Type says what a frame is.
type Type uint8

// Frame types. Direction is noted as agent→hub or hub→agent.
const (
	// TypeHello (agent→hub, JSON Hello) is the first frame after connecting.
	TypeHello Type = 1
	// TypeStart (hub→agent, JSON Start) runs the container's process.
	TypeStart Type = 2
	// TypeStarted (agent→hub, JSON Started) says the process is running.
	TypeStarted Type = 3
	// TypeData (agent→hub, raw bytes) is output of Stream with Seq and Time.
	TypeData Type = 4
	// TypeAck (hub→agent, no payload) acknowledges Stream up to and including Seq.
	TypeAck Type = 5
	// TypeExit (agent→hub, JSON Exit) reports the end of a run; re-sent until ExitAck.
	TypeExit Type = 6
	// TypeExitAck (hub→agent, JSON ExitAck) says the exit status is stored.
	TypeExitAck Type = 7
	// TypeSignal (hub→agent, JSON Signal) delivers a signal to the process.
	TypeSignal Type = 8
	// TypeStdin (hub→agent, raw bytes) is input for the process's stdin.
	TypeStdin Type = 9
	// TypeStdinClose (hub→agent, no payload) closes the process's stdin.
	TypeStdinClose Type = 10
	// TypeShutdown (hub→agent, no payload): the container was removed; kill the
	// process if it still runs and end the function instance.
	TypeShutdown Type = 11
	// TypeExecStart (hub→agent, JSON ExecStart) runs an extra process in the
	// container (docker exec); its output flows on the streams it names.
	TypeExecStart Type = 12
	// TypeExecStarted (agent→hub, JSON ExecStarted) says the exec runs.
	TypeExecStarted Type = 13
	// TypeExecExit (agent→hub, JSON ExecExit) reports the end of an exec,
	// sent after all its output frames; re-sent until ExecExitAck.
	TypeExecExit Type = 14
	// TypeExecExitAck (hub→agent, JSON ExecExitAck) says the exec's exit is stored.
	TypeExecExitAck Type = 15
	// TypeResize (hub→agent, JSON Resize) sets the terminal size of the main
	// process (Exec "") or of an exec.
	TypeResize Type = 16
	// TypeRequest (hub→agent, JSON Request) asks the agent for information
	// about the container (docker top, docker stats).
	TypeRequest Type = 17
	// TypeResponse (agent→hub, JSON Response) answers a Request.
	TypeResponse Type = 18
	// TypeStdinCredit (agent→hub, no payload): the agent has consumed Seq
	// more bytes of stdin stream Stream; the hub may send that many more.
	// Sent only by agents whose Hello has StdinCredit.
	TypeStdinCredit Type = 19
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeStart:
		return "start"
	case TypeStarted:
		return "started"
	case TypeData:
		return "data"
	case TypeAck:
		return "ack"
	case TypeExit:
		return "exit"
	case TypeExitAck:
		return "exit-ack"
	case TypeSignal:
		return "signal"
	case TypeStdin:
		return "stdin"
	case TypeStdinClose:
		return "stdin-close"
	case TypeShutdown:
		return "shutdown"
	case TypeExecStart:
		return "exec-start"
	case TypeExecStarted:
		return "exec-started"
	case TypeExecExit:
		return "exec-exit"
	case TypeExecExitAck:
		return "exec-exit-ack"
	case TypeResize:
		return "resize"
	case TypeRequest:
		return "request"
	case TypeResponse:
		return "response"
	case TypeStdinCredit:
		return "stdin-credit"
	case TypeNetwork:
		return "network"
	case TypeListening:
		return "listening"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Stream numbers of the container's main process. TypeStdin and
// TypeStdinClose name the stdin stream: StreamStdin for the main process,
// ExecStart.Stdin for an exec. Execs get stream numbers from FirstExecStream
// on, allocated by the control plane.
const (
	StreamControl   uint32 = 0
	StreamStdout    uint32 = 1
	StreamStderr    uint32 = 2
	StreamStdin     uint32 = 3
	FirstExecStream uint32 = 4
)

// Window is the most bytes of one stream the agent keeps unacknowledged,
// and the most bytes of one stdin stream the hub keeps sent but not credited.
const Window = 1 << 20

// MaxPayload is the largest payload of a data frame.
const MaxPayload = 32 << 10

// MaxControl is the largest payload of a control frame the agent reads:
// a NetworkView of a container with hundreds of peers is far larger than
// a data frame, and a frame above the reader's limit drops the connection.
const MaxControl = 4 << 20

// HeaderSize is the size of the fixed frame header.
const HeaderSize = 1 + 4 + 8 + 8

// Frame is one WebSocket message.
type Frame struct {
	Type   Type
	Stream uint32
	// Seq numbers data frames of a stream from 1, increasing by one per frame,
	// across runs of the same container on one instance.
	Seq uint64
	// Time is when the agent read the bytes (data frames).
	Time    time.Time
	Payload []byte
}

// Marshal encodes f as one WebSocket binary message.
func (f Frame) Marshal() []byte {
	b := make([]byte, HeaderSize+len(f.Payload))
	b[0] = byte(f.Type)
	binary.BigEndian.PutUint32(b[1:5], f.Stream)
	binary.BigEndian.PutUint64(b[5:13], f.Seq)
	var ts int64
	if !f.Time.IsZero() {
		ts = f.Time.UnixNano()
	}
	binary.BigEndian.PutUint64(b[13:21], uint64(ts))
	copy(b[HeaderSize:], f.Payload)
	return b
}

// ErrShortFrame is returned by Unmarshal for a message shorter than a header.
var ErrShortFrame = errors.New("proto: frame shorter than header")

// Unmarshal decodes one WebSocket binary message. The payload aliases b.
func Unmarshal(b []byte) (Frame, error) {
	if len(b) < HeaderSize {
		return Frame{}, ErrShortFrame
	}
	f := Frame{
		Type:    Type(b[0]),
		Stream:  binary.BigEndian.Uint32(b[1:5]),
		Seq:     binary.BigEndian.Uint64(b[5:13]),
		Payload: b[HeaderSize:],
	}
	if ts := int64(binary.BigEndian.Uint64(b[13:21])); ts != 0 {
		f.Time = time.Unix(0, ts).UTC()
	}
	return f, nil
}

// Control builds a control frame of type t with v encoded as JSON.
func Control(t Type, v any) (Frame, error) {
	f := Frame{Type: t, Stream: StreamControl}
	if v == nil {
		return f, nil
	}
	p, err := json.Marshal(v)
	if err != nil {
		return Frame{}, fmt.Errorf("encode %s: %w", t, err)
	}
	f.Payload = p
	return f, nil
}

// Decode reads a control frame's JSON payload into v.
func (f Frame) Decode(v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return fmt.Errorf("decode %s: %w", f.Type, err)
	}
	return nil
}

// Hello is the agent's first frame on every connection.
type Hello struct {
	ContainerID string `json:"containerId"`
	// Acked is, per stream, the highest sequence number the agent has seen
	// acknowledged; the hub uses it to drop duplicates after a reconnect.
	Acked map[uint32]uint64 `json:"acked,omitempty"`
	// Running is the run currently executing, 0 if none.
	Running uint32 `json:"running,omitempty"`
	// StdinCredit says the agent sends TypeStdinCredit for consumed stdin,
	// so the hub may bound the stdin it sends (older agents do not).
	StdinCredit bool `json:"stdinCredit,omitempty"`
}

// Process is what to run: already merged from image and container config.
type Process struct {
	Args      []string `json:"args"`
	Env       []string `json:"env,omitempty"`
	Dir       string   `json:"dir,omitempty"`
	User      string   `json:"user,omitempty"`
	Tty       bool     `json:"tty,omitempty"`
	OpenStdin bool     `json:"openStdin,omitempty"`
	// GroupAdd are extra supplementary groups (docker's --group-add):
	// names from the image's group file, or numbers.
	GroupAdd []string `json:"groupAdd,omitempty"`
}

// Start asks the agent to run the container's process as run number Run.
type Start struct {
	Run     uint32  `json:"run"`
	Process Process `json:"process"`
	// Rows and Cols are the initial terminal size of a TTY process (the
	// client's console size at create), so it never starts at 24x80
	// before the client's first resize arrives.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// Network is the container's network view, applied before the process
	// starts (nil: the instance's network as it is).
	Network *NetworkView `json:"network,omitempty"`
	// Binds are the container's host bind mounts: each is synced into the
	// instance and mounted before the process starts.
	Binds []Bind `json:"binds,omitempty"`
}

// Started says run Run is executing as Pid.
type Started struct {
	Run uint32 `json:"run"`
	Pid int    `json:"pid"`
}

// Exit reports the end of run Run. A process that could not be started at all
// has Error set and Code 126 (not executable) or 127 (not found), as docker.
type Exit struct {
	Run   uint32 `json:"run"`
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
	// Signal is the signal that killed the process, 0 if it exited.
	Signal int `json:"signal,omitempty"`
}

// ExitAck acknowledges the Exit of run Run.
type ExitAck struct {
	Run uint32 `json:"run"`
}

// Signal asks the agent to deliver signal number Signal to the process.
type Signal struct {
	Signal int `json:"signal"`
	// All delivers it to every process of the instance but the agent
	// (execs, children and orphans included) instead: how docker pause
	// (SIGSTOP) and unpause (SIGCONT) freeze and thaw the whole container.
	// The agent stops parents before their children and continues children
	// before their parents, so no parent sees a child stopped.
	All bool `json:"all,omitempty"`
}

// ExecStart runs Process as exec ID. Its stdout and stderr go out as data
// frames on streams Stdout and Stderr (with a TTY: everything on Stdout);
// with Process.OpenStdin, TypeStdin frames on stream Stdin feed it.
type ExecStart struct {
	ID      string  `json:"id"`
	Stdout  uint32  `json:"stdout"`
	Stderr  uint32  `json:"stderr"`
	Stdin   uint32  `json:"stdin"`
	Process Process `json:"process"`
	// Rows and Cols are the initial terminal size of a TTY exec.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
}

// ArchiveCommand as an exec's Args[0] makes the agent do docker cp's work
// in Go instead of starting a process: Args are [ArchiveCommand, op, path]
// with op "stat" (stdout: the path's JSON stat), "get" (stdout: a tar of
// the path) or "put" (stdin: a tar to extract into the directory path);
// files.go adds the ops of docker diff, commit and export. The exit code
// says how it went: see the Archive* codes.
const ArchiveCommand = "sockerless:archive"

// Exit codes of an ArchiveCommand; stderr carries the message.
const (
	ArchiveOK       = 0
	ArchiveFailed   = 1
	ArchiveNotFound = 2
	ArchiveNotDir   = 3
	// ArchiveBadTar: an upload that is not a tar, or an entry that cannot
	// be extracted (a hard link to a missing file, a path beneath a
	// symlink the same upload made).
	ArchiveBadTar = 4
)

// ExecStarted says exec ID runs as Pid.
type ExecStarted struct {
	ID  string `json:"id"`
	Pid int    `json:"pid"`
}

// ExecExit reports the end of exec ID; like Exit, Error is set (and Code is
// 126 or 127) when the process could not be started.
type ExecExit struct {
	ID     string `json:"id"`
	Code   int    `json:"code"`
	Error  string `json:"error,omitempty"`
	Signal int    `json:"signal,omitempty"`
}

// ExecExitAck acknowledges the ExecExit of exec ID.
type ExecExitAck struct {
	ID string `json:"id"`
}

// Resize sets a terminal's size; Exec "" is the main process.
type Resize struct {
	Exec string `json:"exec,omitempty"`
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Request kinds.
const (
	// RequestTop lists the container's processes: Body is a Top.
	RequestTop = "top"
	// RequestBinds applies the host's pending changes of the container's
	// bind mounts (a barrier, as before an exec): Body is {}.
	RequestBinds = "binds"
	// RequestStats samples resource usage: Body is a Stats.
	RequestStats = "stats"
	// RequestFlush answers once the output the container's process wrote
	// before it has been sent (its frames precede the Response, so the hub
	// has stored them when the answer arrives): docker logs and attach
	// without a stream see what the process wrote before the request.
	// Body is {}.
	RequestFlush = "flush"
)

// Request asks the agent for Kind; ID pairs it with its Response.
type Request struct {
	ID   string   `json:"id"`
	Kind string   `json:"kind"`
	Args []string `json:"args,omitempty"`
}

// Response answers Request ID with a JSON Body, or an Error.
type Response struct {
	ID    string          `json:"id"`
	Body  json.RawMessage `json:"body,omitempty"`
	Error string          `json:"error,omitempty"`
}

// Top is the process table of a container, as docker top shows it.
type Top struct {
	Titles    []string   `json:"titles"`
	Processes [][]string `json:"processes"`
}

// Stats is one resource sample of the container's processes.
type Stats struct {
	Time time.Time `json:"time"`
	// CPUTotal is CPU time used by the container's processes, in ns.
	CPUTotal uint64 `json:"cpuTotal"`
	// SystemCPU is the host's total CPU time, in ns (as docker's system_cpu_usage).
	SystemCPU   uint64 `json:"systemCpu"`
	OnlineCPUs  uint32 `json:"onlineCpus"`
	MemoryUsage uint64 `json:"memoryUsage"`
	MemoryLimit uint64 `json:"memoryLimit"`
	Pids        uint64 `json:"pids"`
	// Network is the traffic of the instance's interfaces but loopback,
	// summed (docker stats shows it as eth0).
	Network NetStats `json:"network"`
}

// NetStats counts an interface's traffic, as /proc/net/dev does.
type NetStats struct {
	RxBytes   uint64 `json:"rxBytes"`
	RxPackets uint64 `json:"rxPackets"`
	RxErrors  uint64 `json:"rxErrors"`
	RxDropped uint64 `json:"rxDropped"`
	TxBytes   uint64 `json:"txBytes"`
	TxPackets uint64 `json:"txPackets"`
	TxErrors  uint64 `json:"txErrors"`
	TxDropped uint64 `json:"txDropped"`
}

// Invocation is the JSON body of the HTTP POST that starts a container on a
// function instance. The POST stays open for the container's life; the agent
// answers it when the instance may end (container removed or linger over).
type Invocation struct {
	ContainerID string `json:"containerId"`
	// Secret authenticates the agent's WebSocket to the hub.
	Secret string `json:"secret"`
	// CallbackURL is the hub's WebSocket URL (ws:// or wss://).
	CallbackURL string `json:"callbackUrl"`
	// LingerSeconds is how long the instance stays after the process exits,
	// so docker start/cp/exec of the exited container see its filesystem.
	LingerSeconds int `json:"lingerSeconds"`
	// Resume re-opens the invocation of a container the instance already
	// serves, after the control plane that opened the first one restarted:
	// the platform sees the instance busy again and bills, throttles and
	// routes it as such. Only ContainerID is needed. An instance serving
	// ContainerID holds the request until the container's instance ends
	// (200); any other answers 409 at once, and the caller tries again
	// (the platform picks instances, the caller cannot).
	Resume bool `json:"resume,omitempty"`
	// Mounts are the container's volumes and tmpfs mounts, applied before
	// the agent dials back (mounts.go).
	Mounts []Mount `json:"mounts,omitempty"`
}

// Header names of the agent's WebSocket upgrade request.
const (
	HeaderContainer = "X-Sockerless-Container"
	// The secret travels as "Authorization: Bearer <secret>".
	HeaderAuthorization = "Authorization"
)

// StatusInstanceEnded is the hub's answer (410 Gone) to an agent's dial
// with the right secret when the control plane has ended that agent's
// instance (it gave up on the start, found the instance gone, or removed
// the container): the
// refusal is final, and the agent ends its instance instead of dialing
// again, so the platform does not keep an instance busy for nothing.
const StatusInstanceEnded = http.StatusGone

// AgentHeader is the header of an agent's WebSocket upgrades: its
// container and, as a bearer token, its secret.
func AgentHeader(containerID, secret string) http.Header {
	h := http.Header{}
	h.Set(HeaderContainer, containerID)
	h.Set(HeaderAuthorization, "Bearer "+secret)
	return h
}

// DialError describes a failed WebSocket dial of url, with the status the
// server answered if it did.
func DialError(url string, resp *http.Response, err error) error {
	if resp != nil {
		return fmt.Errorf("dial %s: status %d: %w", url, resp.StatusCode, err)
	}
	return fmt.Errorf("dial %s: %w", url, err)
}

// ConnectPath is the hub's WebSocket path, relative to the callback base URL.
const ConnectPath = "/agent/v1/connect"
