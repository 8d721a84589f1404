package instance

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
)

// outputSink is where a pump sends output: the Session.
type outputSink interface {
	WaitWindow(ctx context.Context, stream uint32) error
	Data(stream uint32, p []byte, t time.Time)
}

// lockedReader is a process output that hands its reads on under a lock
// (process.outReader), so that a flush can tell when everything written
// to it is queued.
type lockedReader interface {
	ReadTo(b []byte, deliver func([]byte)) (int, error)
	Quiet() bool
}

// pump reads r until EOF and passes every read to sink as stream's data,
// stamped with the time of the read, and to copyTo. It reads only while the
// stream's window has room for a full frame, so a slow hub makes the
// process block on its writes instead of the agent buffering without bound.
// A lockedReader is registered in quiet while it is pumped, so a flush
// (RequestFlush) waits for its output.
func pump(ctx context.Context, sink outputSink, stream uint32, r io.Reader, copyTo io.Writer, log *slog.Logger, quiet *outputs) {
	buf := make([]byte, proto.MaxPayload)
	deliver := func(b []byte) {
		t := time.Now()
		p := append([]byte(nil), b...)
		if _, werr := copyTo.Write(p); werr != nil {
			log.Debug("copy output to agent stdio", "err", werr)
		}
		sink.Data(stream, p, t)
	}
	read := func() error {
		n, err := r.Read(buf)
		if n > 0 {
			deliver(buf[:n])
		}
		return err
	}
	if lr, ok := r.(lockedReader); ok && quiet != nil {
		quiet.add(lr)
		defer quiet.remove(lr)
		read = func() error {
			_, err := lr.ReadTo(buf, deliver)
			return err
		}
	}
	for {
		if err := sink.WaitWindow(ctx, stream); err != nil {
			return
		}
		if err := read(); err != nil {
			if !errors.Is(err, io.EOF) {
				log.Warn("read process output", "stream", stream, "err", err)
			}
			return
		}
	}
}

// outputs are the container's outputs being pumped, for a flush.
type outputs struct {
	mu  sync.Mutex
	set map[lockedReader]struct{}
}

func (o *outputs) add(r lockedReader) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set == nil {
		o.set = map[lockedReader]struct{}{}
	}
	o.set[r] = struct{}{}
}

func (o *outputs) remove(r lockedReader) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.set, r)
}

// flushWait bounds a flush: past it the hub is behind on the stream's
// window anyway, and the answer goes.
const flushWait = time.Second

// flushPoll is how often a flush looks at outputs not yet quiet.
const flushPoll = 2 * time.Millisecond

// flush returns once every output is quiet (what the process wrote before
// the call is queued for the hub, ahead of anything queued after), or
// when ctx ends (a full window: the hub is behind anyway).
func (o *outputs) flush(ctx context.Context) {
	for {
		o.mu.Lock()
		quiet := true
		for r := range o.set {
			if !r.Quiet() {
				quiet = false
				break
			}
		}
		o.mu.Unlock()
		if quiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(flushPoll):
		}
	}
}
