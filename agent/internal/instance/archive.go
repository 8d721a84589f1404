package instance

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/sockerless/sockerless/agent/internal/archive"
	"github.com/sockerless/sockerless/agent/proto"
)

// stdinSink takes input for a stdin stream without blocking the loop.
type stdinSink interface {
	WriteStdin([]byte)
	CloseStdin()
}

// queue is a stdinSink read as an io.Reader: writes never block. What it
// holds is bounded by the hub's stdin window: every byte read from it (or
// dropped after it closed) is reported to consumed, which credits the hub.
type queue struct {
	consumed func(n int)

	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte
	closed bool
}

// newQueue returns a queue that reports consumed bytes to consumed.
func newQueue(consumed func(n int)) *queue {
	q := &queue{consumed: consumed}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) WriteStdin(b []byte) {
	q.mu.Lock()
	closed := q.closed
	if !closed {
		q.chunks = append(q.chunks, b)
	}
	q.mu.Unlock()
	if closed {
		q.consumed(len(b))
		return
	}
	q.cond.Broadcast()
}

func (q *queue) CloseStdin() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *queue) Read(p []byte) (int, error) {
	q.mu.Lock()
	for len(q.chunks) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.chunks) == 0 {
		q.mu.Unlock()
		return 0, io.EOF
	}
	n := copy(p, q.chunks[0])
	if n == len(q.chunks[0]) {
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
	} else {
		q.chunks[0] = q.chunks[0][n:]
	}
	q.mu.Unlock()
	q.consumed(n)
	return n, nil
}

// startArchive does an ArchiveCommand exec in Go. Its output flows like a
// process's (same streams, same flow control) and it reports an ExecExit.
// It returns the stdin sink of a "put".
func (in *Instance) startArchive(ctx context.Context, runs *sync.WaitGroup, es proto.ExecStart) stdinSink {
	args := es.Process.Args
	log := in.log.With("exec", es.ID)
	op, path := "", ""
	if len(args) == 3 {
		op, path = args[1], args[2]
	}
	var stdin *queue
	if op == "put" || op == proto.ArchiveChanges || op == proto.ArchiveLayer {
		stdin = newQueue(func(n int) { in.sess.Credit(es.Stdin, n) })
	}
	in.sess.ExecStarted(es.ID, 0)
	outR, outW := io.Pipe()
	runs.Add(1)
	go func() {
		defer runs.Done()
		pumped := make(chan struct{})
		go func() {
			defer close(pumped)
			pump(ctx, in.sess, es.Stdout, outR, io.Discard, log, nil)
		}()
		var err error
		switch op {
		case "stat":
			var st archive.PathStat
			if st, err = archive.Stat(path); err == nil {
				err = json.NewEncoder(outW).Encode(st)
			}
		case "get":
			err = archive.Write(outW, path)
		case "put":
			err = archive.Extract(stdin, path)
		case proto.ArchiveChanges, proto.ArchiveLayer, proto.ArchiveExport:
			err = treeOp(op, stdin, outW)
		default:
			err = errors.New("usage: " + proto.ArchiveCommand + " stat|get|put|changes|layer|export PATH")
		}
		if err != nil && stdin != nil {
			_, _ = io.Copy(io.Discard, stdin) // the client may still be sending
		}
		outW.Close()
		<-pumped
		code := archive.ExitCode(err)
		if err != nil {
			log.Info("archive failed", "op", op, "path", path, "err", err)
			in.sess.Data(es.Stderr, []byte(err.Error()), time.Now())
		}
		in.post(event{kind: evExecDone, id: es.ID})
		_ = in.sess.ExecExit(ctx, proto.ExecExit{ID: es.ID, Code: code})
	}()
	if stdin == nil {
		return nil
	}
	return stdin
}

// treeOp does docker diff (changes), commit (layer) and export on the
// instance's root filesystem; changes and layer read the image's file
// index from stdin.
func treeOp(op string, stdin io.Reader, out io.Writer) error {
	tree, err := archive.InstanceTree()
	if err != nil {
		return err
	}
	if op == proto.ArchiveExport {
		return tree.Export(out)
	}
	idx, err := archive.ReadIndex(stdin)
	if err != nil {
		return err
	}
	changes, err := tree.Changes(idx)
	if err != nil {
		return err
	}
	if op == proto.ArchiveLayer {
		return tree.WriteLayer(out, changes)
	}
	enc := json.NewEncoder(out)
	for _, c := range changes {
		if err := enc.Encode(c); err != nil {
			return err
		}
	}
	return nil
}
