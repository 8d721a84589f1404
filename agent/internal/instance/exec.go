package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/sockerless/sockerless/agent/internal/process"
	"github.com/sockerless/sockerless/agent/proto"
)

// execTable is the loop's record of the execs that run and of the stdin
// streams that feed them (and the archive "put" execs). Only the loop
// touches it.
type execTable struct {
	procs   map[string]*process.Proc
	stdins  map[uint32]stdinEntry
	pending map[string]*pendingStdin // execs waiting for their bind barrier
}

// stdinEntry is the sink of one stdin stream and the exec it belongs to.
type stdinEntry struct {
	exec string
	sink stdinSink
}

func newExecTable() *execTable {
	return &execTable{procs: map[string]*process.Proc{}, stdins: map[uint32]stdinEntry{}, pending: map[string]*pendingStdin{}}
}

// addPending records exec id as waiting to start; its stdin (if pend is
// not nil) is kept in pend meanwhile.
func (t *execTable) addPending(id string, stream uint32, pend *pendingStdin) {
	t.pending[id] = pend
	if pend != nil {
		t.stdins[stream] = stdinEntry{exec: id, sink: pend}
	}
}

// takePending forgets that exec id waits and returns its stdin buffer.
func (t *execTable) takePending(id string) *pendingStdin {
	pend := t.pending[id]
	delete(t.pending, id)
	return pend
}

// pendingStdin holds an exec's stdin until its process starts (the hub's
// stdin window bounds it).
type pendingStdin struct {
	data   [][]byte
	closed bool
}

func (p *pendingStdin) WriteStdin(b []byte) { p.data = append(p.data, b) }
func (p *pendingStdin) CloseStdin()         { p.closed = true }

// execStarted records an exec started from the loop (p nil: it did not
// start, and reported so) and hands it the stdin that waited in pend.
func (in *Instance) execStarted(execs *execTable, es proto.ExecStart, p *process.Proc, pend *pendingStdin) {
	if p == nil {
		execs.remove(es.ID)
		if pend != nil {
			for _, b := range pend.data {
				in.sess.Credit(es.Stdin, len(b)) // dropped: consumed all the same
			}
		}
		return
	}
	var sink stdinSink
	if es.Process.OpenStdin {
		sink = p
	}
	execs.add(es.ID, p, es.Stdin, sink)
	if pend != nil {
		for _, b := range pend.data {
			p.WriteStdin(b)
		}
		if pend.closed {
			p.CloseStdin()
		}
	}
}

// has reports whether exec id is known (running, or its output still flowing).
func (t *execTable) has(id string) bool {
	if _, ok := t.procs[id]; ok {
		return true
	}
	if _, ok := t.pending[id]; ok {
		return true
	}
	for _, e := range t.stdins {
		if e.exec == id {
			return true
		}
	}
	return false
}

// add records exec id; a non-nil sink receives the frames of stdin stream.
func (t *execTable) add(id string, p *process.Proc, stream uint32, sink stdinSink) {
	if p != nil {
		t.procs[id] = p
	}
	if sink != nil {
		t.stdins[stream] = stdinEntry{exec: id, sink: sink}
	}
}

// remove forgets exec id and its stdin stream.
func (t *execTable) remove(id string) {
	delete(t.procs, id)
	for st, e := range t.stdins {
		if e.exec == id {
			delete(t.stdins, st)
		}
	}
}

// stdin returns the sink of an exec's stdin stream, nil if none.
func (t *execTable) stdin(stream uint32) stdinSink {
	if e, ok := t.stdins[stream]; ok {
		return e.sink
	}
	return nil
}

// killAll kills every exec process still running, as docker does when the
// container's process ends (its pid namespace dies). Each one then reports
// its exit (137) through its own goroutine.
func (t *execTable) killAll(log *slog.Logger) {
	for id, p := range t.procs {
		select {
		case <-p.Done():
			continue
		default:
		}
		log.Info("killing exec: the container's process ended", "exec", id)
		p.Kill()
	}
}

// startExec starts an exec's process through the Supervisor (as the main
// process: same PATH, user, working directory and 126/127 failures) and the
// goroutine that streams its output on the exec's streams, under the same
// per-stream flow control as the main process, and then reports its exit.
// It returns nil if the process did not start; that failure is reported as
// the exec's exit.
func (in *Instance) startExec(ctx context.Context, runs *sync.WaitGroup, es proto.ExecStart, bindErr error) *process.Proc {
	log := in.log.With("exec", es.ID)
	// The host's changes of the binds are in before the exec starts
	// (bindErr: the barrier failed).
	var proc *process.Proc
	err := bindErr
	if err != nil {
		err = fmt.Errorf("host bind mounts: %w", err)
	} else {
		proc, err = in.cfg.Supervisor.StartSized(es.Process, process.Size{Rows: es.Rows, Cols: es.Cols})
	}
	if err != nil {
		exit := proto.ExecExit{ID: es.ID, Code: process.CodeCannotExecute, Error: err.Error()}
		var se *process.StartError
		if errors.As(err, &se) {
			exit.Code = se.Code
		}
		log.Warn("exec did not start", "err", err, "code", exit.Code)
		runs.Add(1)
		go func() {
			defer runs.Done()
			_ = in.sess.ExecExit(ctx, exit)
		}()
		return nil
	}
	proc.SetStdinConsumed(func(n int) { in.sess.Credit(es.Stdin, n) })
	log.Info("exec started", "pid", proc.Pid())
	in.sess.ExecStarted(es.ID, proc.Pid())
	runs.Add(1)
	go func() {
		defer runs.Done()
		var pumps sync.WaitGroup
		start := func(stream uint32, rd io.Reader) {
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				pump(ctx, in.sess, stream, rd, io.Discard, log, nil) // exec output is not the container's log
			}()
		}
		start(es.Stdout, proc.Stdout())
		if rd := proc.Stderr(); rd != nil {
			start(es.Stderr, rd)
		}
		pumps.Wait()
		st := proc.Status()
		proc.Close()
		log.Info("exec exited", "code", st.Code, "signal", st.Signal)
		in.flushBinds(ctx) // the exec's changes are on the host before its output ends
		in.post(event{kind: evExecDone, id: es.ID})
		_ = in.sess.ExecExit(ctx, proto.ExecExit{ID: es.ID, Code: st.Code, Signal: st.Signal})
	}()
	return proc
}
