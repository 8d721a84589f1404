package agenthub

import (
	"context"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
)

// Backend is what the hub needs from the engine. Errors it returns are
// logged, so they must never contain an agent secret.
type Backend interface {
	// AuthorizeAgent returns nil if secret is container id's agent secret
	// (compared in constant time by the implementation). Any error refuses
	// the dial: engine.ErrInstanceEnded with proto.StatusInstanceEnded (the
	// agent ends its instance), a KindUnavailable *engine.Error with 503,
	// anything else with 401.
	AuthorizeAgent(ctx context.Context, id, secret string) error
	// AgentAcked returns, per stream, the highest data seq already stored for
	// container id (used to drop re-sent frames after a reconnect).
	AgentAcked(ctx context.Context, id string) (map[uint32]uint64, error)
	// StoreOutput persists output entries (Stream = proto stream number,
	// Time, Data; Seq is assigned by the store) together with acked (per
	// stream, the last agent seq in this batch), atomically. The hub
	// acknowledges to the agent only after it returns nil.
	StoreOutput(ctx context.Context, id string, entries []engine.LogEntry, acked map[uint32]uint64) error
	// StoreExit persists the exit of a run; the hub sends ExitAck only after
	// it returns nil. It must be idempotent for the same run: the agent
	// re-sends an Exit until it is acknowledged.
	StoreExit(ctx context.Context, id string, e proto.Exit) error
	// StoreExecExit persists the exit of an exec, after the exec's output
	// read before it; the hub sends ExecExitAck only after it returns nil.
	// It must be idempotent for the same exec.
	StoreExecExit(ctx context.Context, id string, e proto.ExecExit) error
	// AgentListening says which TCP ports the processes of container id
	// listen on (proto.Listening), whenever that changes and after every
	// connect. It must not block for long.
	AgentListening(ctx context.Context, id string, ports []int)
	// AgentGone tells the engine that the connection of container id ended
	// (the agent may come back). It is called once per authenticated
	// connection, after Connected(id) turned false and before a connection
	// that replaces it is registered. It must not block for long.
	AgentGone(id string)
}

// OutputExitStorer is a Backend that also stores a batch of output and
// the Exit read right after it in one step: StoreOutput then StoreExit,
// atomically (one write of the container instead of two). The hub uses it
// when its Backend has it.
type OutputExitStorer interface {
	StoreOutputExit(ctx context.Context, id string, entries []engine.LogEntry, acked map[uint32]uint64, e proto.Exit) error
	// OutputLinger is how long the hub waits, after a batch of output
	// with nothing behind it, for one more frame before it stores the
	// batch: a process that prints and ends sends its exit a moment after
	// its output, and the two are then one write. Zero: no wait (a store
	// whose writes cost less than the wait).
	OutputLinger() time.Duration
}
