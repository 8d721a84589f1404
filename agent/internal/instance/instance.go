package instance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sockerless/sockerless/agent/internal/dockersock"
	"github.com/sockerless/sockerless/agent/internal/mesh"
	"github.com/sockerless/sockerless/agent/internal/mounts"
	"github.com/sockerless/sockerless/agent/internal/process"
	"github.com/sockerless/sockerless/agent/internal/procinfo"
	"github.com/sockerless/sockerless/agent/internal/session"
	"github.com/sockerless/sockerless/agent/proto"
)

// killWait bounds how long ending the instance waits for a killed process
// and its output.
const killWait = 10 * time.Second

// Config configures an Instance.
type Config struct {
	Invocation proto.Invocation
	// Supervisor starts the container's processes; its Run must be active.
	Supervisor *process.Supervisor
	// Session holds the connection timings; the URL, container, secret and
	// handler are taken from the Invocation and the Instance.
	Session session.Config
	// Stdout and Stderr receive a copy of the process's output (default
	// io.Discard).
	Stdout, Stderr io.Writer
	// Mounter applies the container's mounts before the agent dials back
	// (nil: mounts.Local at proto.VolumesRoot).
	Mounter mounts.Mounter
	Logger  *slog.Logger
	// Mesh holds the mesh connection's timings; the URL, container and
	// secret are taken from the Invocation.
	Mesh mesh.Config
	// NewNetwork makes the Network that applies the control plane's
	// network views; nil ignores them.
	NewNetwork func(NetworkDeps) Network
}

// Instance serves one invocation.
type Instance struct {
	cfg    Config
	log    *slog.Logger
	sess   *session.Session
	mesh   *mesh.Mesh
	net    Network // nil: network views are ignored
	events chan event
	done   chan struct{} // closed when Run's loop ends
	binds  bindSet
	// outputs are the main process's outputs while pumped (RequestFlush).
	outputs outputs
}

// New returns an Instance for cfg.Invocation; Run serves it.
func New(cfg Config) *Instance {
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	in := &Instance{
		cfg:    cfg,
		log:    cfg.Logger.With("container", cfg.Invocation.ContainerID),
		events: make(chan event, 64),
		done:   make(chan struct{}),
	}
	sc := cfg.Session
	sc.CallbackURL = cfg.Invocation.CallbackURL
	sc.ContainerID = cfg.Invocation.ContainerID
	sc.Secret = cfg.Invocation.Secret
	sc.Handler = handler{in}
	sc.Logger = in.log
	in.sess = session.New(sc)
	mc := cfg.Mesh
	mc.CallbackURL = cfg.Invocation.CallbackURL
	mc.ContainerID = cfg.Invocation.ContainerID
	mc.Secret = cfg.Invocation.Secret
	mc.Logger = in.log
	in.mesh = mesh.New(mc)
	if cfg.NewNetwork != nil {
		in.net = cfg.NewNetwork(NetworkDeps{Dial: in.mesh.Dial, Listening: in.sess.Listening, Logger: in.log})
	}
	return in
}

// Dial opens a mesh stream to the hub (see mesh.Mesh.Dial).
func (in *Instance) Dial(ctx context.Context, open proto.MeshOpen) (net.Conn, error) {
	return in.mesh.Dial(ctx, open)
}

// event is something the loop must act on.
type event struct {
	kind   eventKind
	start  proto.Start
	exec   proto.ExecStart
	resize proto.Resize
	sig    int
	all    bool // evSignal: to every process (proto.Signal.All)
	data   []byte
	stream uint32
	run    uint32
	id     string
	sessEr error
	view   proto.NetworkView
}

type eventKind int

const (
	evStart eventKind = iota
	evSignal
	evStdin
	evStdinClose
	evShutdown
	evTerminate
	evRunDone // the run's Exit is acknowledged
	evSessionEnded
	evExecStart
	evExecDone  // an exec's process has ended
	evExecReady // an exec's bind barrier is done: start its process
	evResize
	evNetwork
)

// post hands e to the loop; it never blocks past the loop's end.
func (in *Instance) post(e event) {
	select {
	case in.events <- e:
	case <-in.done:
	}
}

// Terminate handles a SIGTERM to the agent (the platform stopping the
// instance): the running process gets SIGTERM; an idle instance ends.
func (in *Instance) Terminate() { in.post(event{kind: evTerminate}) }

// run is one execution of the container's process.
type run struct {
	n      uint32
	proc   *process.Proc // nil if it could not start
	done   chan struct{} // closed when its goroutine has ended
	exited bool          // the loop has seen proc end (owned by the loop)
}

func (r *run) running() bool {
	if r == nil || r.proc == nil {
		return false
	}
	select {
	case <-r.proc.Done():
		return false
	default:
		return true
	}
}

// Run serves the invocation until the container is removed (Shutdown), the
// linger time after the last exit passes, an idle instance is terminated,
// or ctx ends: then it returns nil. If the hub stays unreachable it returns
// an error wrapping session.ErrUnreachable; if the hub says the control
// plane has ended the instance, one wrapping session.ErrInstanceEnded.
// Either way the process is killed and the connection closed before it
// returns.
func (in *Instance) Run(ctx context.Context) error {
	if err := in.mount(); err != nil {
		return err
	}
	socks, err := dockersock.Serve(in.cfg.Invocation.Mounts, in.mesh.Dial, in.log)
	if err != nil {
		in.log.Error("docker socket", "err", err)
		return fmt.Errorf("set up the container's mounts: %w", err)
	}
	defer socks.Close()
	sessCtx, stopSess := context.WithCancel(context.Background())
	sessDone := make(chan struct{})
	go func() {
		defer close(sessDone)
		if err := in.sess.Run(sessCtx); err != nil {
			in.post(event{kind: evSessionEnded, sessEr: err})
		}
	}()
	meshCtx, stopMesh := context.WithCancel(context.Background())
	meshDone := make(chan struct{})
	go func() {
		defer close(meshDone)
		in.mesh.Run(meshCtx)
	}()
	runCtx, stopRuns := context.WithCancel(context.Background())
	var runs sync.WaitGroup

	err = in.loop(ctx, runCtx, &runs)

	close(in.done)
	stopRuns()
	waitTimeout(&runs, killWait, in.log)
	in.closeBinds()
	if in.net != nil {
		if err := in.net.Close(); err != nil {
			in.log.Warn("close network", "err", err)
		}
	}
	stopMesh()
	<-meshDone
	stopSess()
	<-sessDone
	return err
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration, log *slog.Logger) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		log.Warn("runs did not finish in time", "waited", d)
	}
}

// loop is the owner of the instance's state.
func (in *Instance) loop(ctx, runCtx context.Context, runs *sync.WaitGroup) error {
	var (
		cur    *run
		linger <-chan time.Time
		timer  *time.Timer
		execs  = newExecTable()
	)
	stopLinger := func() {
		if timer != nil {
			timer.Stop()
			timer, linger = nil, nil
		}
	}
	defer stopLinger()
	end := func(err error) error {
		execs.killAll(in.log)
		if cur.running() {
			cur.proc.Kill()
			select {
			case <-cur.proc.Done():
			case <-time.After(killWait):
				in.log.Warn("process did not die after SIGKILL", "pid", cur.proc.Pid())
			}
		}
		return err
	}
	for {
		// procExited fires once when the run's process has ended, before its
		// output is drained and its Exit acknowledged.
		var procExited <-chan struct{}
		if cur != nil && cur.proc != nil && !cur.exited {
			procExited = cur.proc.Done()
		}
		select {
		case <-ctx.Done():
			return end(nil)
		case <-procExited:
			cur.exited = true
			execs.killAll(in.log) // as docker: execs die with the container's process
		case <-linger:
			in.log.Info("linger time over; ending instance")
			return end(nil)
		case e := <-in.events:
			switch e.kind {
			case evStart:
				if cur.running() {
					in.log.Warn("start while a run is running; ignored", "run", e.start.Run, "running", cur.n)
					continue
				}
				stopLinger()
				cur = in.startRun(runCtx, runs, e.start)
			case evSignal:
				if !cur.running() {
					continue
				}
				if e.all {
					// docker pause and unpause: every process of the
					// container (descendants of the agent, which adopts
					// orphans), execs included; parents stopped before
					// their children and continued after them.
					if _, err := procinfo.SignalTree("/proc", os.Getpid(), syscall.Signal(e.sig)); err != nil {
						in.log.Warn("signal every process", "signal", e.sig, "err", err)
					}
					continue
				}
				if err := cur.proc.Signal(syscall.Signal(e.sig)); err != nil && !errors.Is(err, process.ErrExited) {
					in.log.Warn("deliver signal", "signal", e.sig, "err", err)
				}
			case evStdin:
				if sink := in.stdinSink(cur, execs, e.stream); sink != nil {
					sink.WriteStdin(e.data)
				} else {
					in.sess.Credit(e.stream, len(e.data)) // dropped: consumed all the same
				}
			case evStdinClose:
				if sink := in.stdinSink(cur, execs, e.stream); sink != nil {
					sink.CloseStdin()
				}
			case evExecStart:
				if execs.has(e.exec.ID) {
					in.log.Warn("exec started twice; ignored", "exec", e.exec.ID)
					continue
				}
				if args := e.exec.Process.Args; len(args) > 0 && args[0] == proto.ArchiveCommand {
					execs.add(e.exec.ID, nil, e.exec.Stdin, in.startArchive(runCtx, runs, e.exec))
					continue
				}
				if in.hasBinds() {
					// The barrier takes a round trip to the client's
					// machine (longer behind a large change): the loop
					// goes on meanwhile, and stdin waits in a buffer.
					var pend *pendingStdin
					if e.exec.Process.OpenStdin {
						pend = &pendingStdin{}
					}
					execs.addPending(e.exec.ID, e.exec.Stdin, pend)
					es := e.exec
					runs.Add(1)
					go func() {
						defer runs.Done()
						err := in.pullBinds(runCtx, nil)
						in.post(event{kind: evExecReady, exec: es, sessEr: err})
					}()
					continue
				}
				in.execStarted(execs, e.exec, in.startExec(runCtx, runs, e.exec, nil), nil)
			case evExecReady:
				pend := execs.takePending(e.exec.ID)
				in.execStarted(execs, e.exec, in.startExec(runCtx, runs, e.exec, e.sessEr), pend)
			case evExecDone:
				execs.remove(e.id)
			case evNetwork:
				if err := in.applyNetwork(e.view); err != nil {
					in.log.Warn("apply network view", "err", err)
				}
			case evResize:
				var p *process.Proc
				switch {
				case e.resize.Exec != "":
					p = execs.procs[e.resize.Exec]
				case cur.running():
					p = cur.proc
				}
				if p == nil {
					in.log.Debug("resize of no running process; ignored", "exec", e.resize.Exec)
				} else {
					if err := p.Resize(process.Size{Rows: e.resize.Rows, Cols: e.resize.Cols}); err != nil {
						in.log.Warn("resize", "exec", e.resize.Exec, "err", err)
					}
				}
			case evShutdown:
				in.log.Info("container removed; ending instance")
				return end(nil)
			case evTerminate:
				if !cur.running() {
					in.log.Info("terminated while idle; ending instance")
					return end(nil)
				}
				in.log.Info("forwarding SIGTERM to the process")
				if err := cur.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, process.ErrExited) {
					in.log.Warn("forward SIGTERM", "err", err)
				}
			case evRunDone:
				if cur == nil || cur.n != e.run {
					continue // a newer run has started meanwhile
				}
				cur = nil
				execs.killAll(in.log)
				d := time.Duration(in.cfg.Invocation.LingerSeconds) * time.Second
				if d <= 0 {
					in.log.Info("run exited; no linger, ending instance", "run", e.run)
					return end(nil)
				}
				in.log.Info("run exited; lingering", "run", e.run, "linger", d.String())
				timer = time.NewTimer(d)
				linger = timer.C
			case evSessionEnded:
				if errors.Is(e.sessEr, session.ErrInstanceEnded) {
					in.log.Info("the control plane has ended this instance; ending it", "err", e.sessEr)
					return end(fmt.Errorf("end instance: %w", e.sessEr))
				}
				in.log.Error("giving up on the hub", "err", e.sessEr)
				return end(fmt.Errorf("end instance: %w", e.sessEr))
			}
		}
	}
}

// startRun starts the process of s and the goroutine that streams its output
// and reports its exit.
func (in *Instance) startRun(ctx context.Context, runs *sync.WaitGroup, s proto.Start) *run {
	r := &run{n: s.Run, done: make(chan struct{})}
	log := in.log.With("run", s.Run)
	var proc *process.Proc
	var err error
	if s.Network != nil {
		if nerr := in.applyNetwork(*s.Network); nerr != nil {
			err = fmt.Errorf("apply the container's network: %w", nerr)
		}
	}
	if err == nil && len(s.Binds) > 0 {
		if berr := in.pullBinds(ctx, s.Binds); berr != nil {
			err = fmt.Errorf("host bind mounts: %w", berr)
		}
	}
	if err == nil {
		proc, err = in.cfg.Supervisor.StartSized(s.Process, process.Size{Rows: s.Rows, Cols: s.Cols})
	}
	if err != nil {
		exit := proto.Exit{Run: s.Run, Code: process.CodeCannotExecute, Error: err.Error()}
		var se *process.StartError
		if errors.As(err, &se) {
			exit.Code = se.Code
		}
		log.Warn("process did not start", "err", err, "code", exit.Code)
		runs.Add(1)
		go func() {
			defer runs.Done()
			defer close(r.done)
			in.reportExit(ctx, exit)
		}()
		return r
	}
	r.proc = proc
	proc.SetStdinConsumed(func(n int) { in.sess.Credit(proto.StreamStdin, n) })
	log.Info("process started", "pid", proc.Pid())
	in.sess.Started(s.Run, proc.Pid())
	runs.Add(1)
	go func() {
		defer runs.Done()
		defer close(r.done)
		var pumps sync.WaitGroup
		start := func(stream uint32, rd io.Reader, copyTo io.Writer) {
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				pump(ctx, in.sess, stream, rd, copyTo, log, &in.outputs)
			}()
		}
		start(proto.StreamStdout, proc.Stdout(), in.cfg.Stdout)
		if rd := proc.Stderr(); rd != nil {
			start(proto.StreamStderr, rd, in.cfg.Stderr)
		}
		pumps.Wait()
		st := proc.Status()
		proc.Close()
		log.Info("process exited", "code", st.Code, "signal", st.Signal)
		in.flushBinds(ctx) // the container's changes are on the host before its exit is known
		in.reportExit(ctx, proto.Exit{Run: s.Run, Code: st.Code, Signal: st.Signal})
	}()
	return r
}

// stdinSink returns where input of stream goes: an exec's stdin stream
// feeds that exec (if it opened stdin); proto.StreamStdin, and for
// compatibility stream 0, feed the running process. Nil means nobody takes
// it: the input is dropped.
func (in *Instance) stdinSink(cur *run, execs *execTable, stream uint32) stdinSink {
	if sink := execs.stdin(stream); sink != nil {
		return sink
	}
	if stream == proto.StreamStdin || stream == proto.StreamControl {
		if cur.running() {
			return cur.proc
		}
		in.log.Debug("stdin while no process runs; ignored", "stream", stream)
		return nil
	}
	in.log.Debug("stdin for an unknown stream; ignored", "stream", stream)
	return nil
}

// reportExit sends e until the hub acknowledges it, then tells the loop.
func (in *Instance) reportExit(ctx context.Context, e proto.Exit) {
	if err := in.sess.Exit(ctx, e); err != nil {
		return
	}
	in.post(event{kind: evRunDone, run: e.Run})
}

// handler turns the hub's commands into events for the loop.
type handler struct{ in *Instance }

func (h handler) Start(s proto.Start) { h.in.post(event{kind: evStart, start: s}) }
func (h handler) Signal(s proto.Signal) {
	h.in.post(event{kind: evSignal, sig: s.Signal, all: s.All})
}
func (h handler) Stdin(stream uint32, p []byte) {
	h.in.post(event{kind: evStdin, stream: stream, data: p})
}
func (h handler) StdinClose(stream uint32)    { h.in.post(event{kind: evStdinClose, stream: stream}) }
func (h handler) ExecStart(e proto.ExecStart) { h.in.post(event{kind: evExecStart, exec: e}) }
func (h handler) Resize(r proto.Resize)       { h.in.post(event{kind: evResize, resize: r}) }

// Request answers at once from /proc, outside the loop: it reads no state.
func (h handler) Request(r proto.Request) {
	go func() {
		resp := proto.Response{ID: r.ID}
		var body any
		var err error
		switch r.Kind {
		case proto.RequestTop:
			body, err = procinfo.Top("/proc", os.Getpid())
		case proto.RequestStats:
			body, err = procinfo.Stats("/proc", os.Getpid())
		case proto.RequestFlush:
			ctx, cancel := context.WithTimeout(context.Background(), flushWait)
			h.in.outputs.flush(ctx)
			cancel()
			body = struct{}{}
		case proto.RequestBinds:
			ctx, cancel := context.WithTimeout(context.Background(), bindBarrierWait)
			err = h.in.pullBinds(ctx, nil)
			cancel()
			body = struct{}{}
		default:
			err = fmt.Errorf("unknown request %q", r.Kind)
		}
		if err == nil {
			resp.Body, err = json.Marshal(body)
		}
		if err != nil {
			resp.Error = err.Error()
		}
		h.in.sess.Respond(resp)
	}()
}
func (h handler) Shutdown() { h.in.post(event{kind: evShutdown}) }
func (h handler) Network(v proto.NetworkView) {
	h.in.post(event{kind: evNetwork, view: v})
}
