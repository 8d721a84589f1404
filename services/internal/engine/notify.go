package engine

import "sync"

// notifier wakes goroutines waiting for changes of one container (state or
// output). A waiter takes the channel first, then reads the store, then
// blocks on the channel, so no change between the read and the wait is lost.
type notifier struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

func newNotifier() *notifier { return &notifier{chans: map[string]chan struct{}{}} }

// changed returns a channel closed at the next notify of id.
func (n *notifier) changed(id string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	ch, ok := n.chans[id]
	if !ok {
		ch = make(chan struct{})
		n.chans[id] = ch
	}
	return ch
}

// notify wakes every waiter of id.
func (n *notifier) notify(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ch, ok := n.chans[id]; ok {
		close(ch)
		delete(n.chans, id)
	}
}

// notifyAll wakes every waiter: they read the store again.
func (n *notifier) notifyAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, ch := range n.chans {
		close(ch)
		delete(n.chans, id)
	}
}
