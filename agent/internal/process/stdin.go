package process

import (
	"log/slog"
	"os"
	"sync"
)

// stdinWriter feeds a process's stdin from a queue in its own goroutine, so
// that a process that does not read never blocks the agent's connection.
type stdinWriter struct {
	f     *os.File
	owned bool // f is the stdin pipe alone (not a pty master) and may be closed
	log   *slog.Logger

	mu sync.Mutex
	// consumed learns of every byte given to write once it is written or
	// dropped (nil: nobody listens); it is called without mu held.
	consumed func(n int)
	queue    [][]byte
	closing  bool // close f once the queue is empty
	stopped  bool
	wake     chan struct{}
	done     chan struct{}
}

func newStdinWriter(f *os.File, owned bool, log *slog.Logger) *stdinWriter {
	w := &stdinWriter{f: f, owned: owned, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *stdinWriter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *stdinWriter) setConsumed(fn func(n int)) {
	w.mu.Lock()
	w.consumed = fn
	w.mu.Unlock()
}

// report tells the consumed callback, if any, about n bytes.
func (w *stdinWriter) report(fn func(int), n int) {
	if fn != nil && n > 0 {
		fn(n)
	}
}

func (w *stdinWriter) write(b []byte) {
	w.mu.Lock()
	dropped := w.closing || w.stopped
	if !dropped {
		w.queue = append(w.queue, b)
	}
	fn := w.consumed
	w.mu.Unlock()
	if dropped {
		w.report(fn, len(b))
		return
	}
	w.signal()
}

// dropQueueLocked empties the queue and returns how many bytes it held.
func (w *stdinWriter) dropQueueLocked() int {
	n := 0
	for _, b := range w.queue {
		n += len(b)
	}
	w.queue = nil
	return n
}

func (w *stdinWriter) closeAfterDrain() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.signal()
}

// stop ends the writer and waits for it; queued input is dropped.
func (w *stdinWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	if w.owned {
		_ = w.f.Close() // unblocks a pending write
	}
	w.signal()
	<-w.done
}

func (w *stdinWriter) loop() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if w.stopped {
			n, fn := w.dropQueueLocked(), w.consumed
			w.mu.Unlock()
			w.report(fn, n)
			return
		}
		if len(w.queue) == 0 {
			closing := w.closing
			w.mu.Unlock()
			if closing {
				if w.owned {
					_ = w.f.Close()
				}
				return
			}
			<-w.wake
			continue
		}
		b := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()
		if _, err := w.f.Write(b); err != nil {
			w.log.Debug("stdin write ended", "err", err)
			w.mu.Lock()
			n, fn := w.dropQueueLocked(), w.consumed
			w.stopped = true
			w.mu.Unlock()
			w.report(fn, n+len(b))
			return
		}
		w.mu.Lock()
		fn := w.consumed
		w.mu.Unlock()
		w.report(fn, len(b))
	}
}
