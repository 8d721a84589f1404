package netplane

import (
	"context"
	"sync"
	"time"
)

// pushParallel bounds the views sent at once.
const pushParallel = 16

// pusher sends changed views to agents. Changes mark networks dirty; after
// Debounce it lists each dirty namespace's networks once, builds the view
// of every member of a dirty network and sends those that differ from the
// last one sent, so a burst of starts on one network costs one round.
type pusher struct {
	p    *Plane
	kick chan struct{}
	// rounds serialises rounds, so that an agent never gets an older view
	// after a newer one.
	rounds sync.Mutex

	mu    sync.Mutex
	dirty map[string]map[string]bool // namespace → network IDs
	sent  map[string][32]byte        // container ID → hash of its last view sent
	// missed are containers a view could not be sent to since their
	// start; sending counts the sends under way by container.
	missed  map[string]bool
	sending map[string]int
}

func newPusher(p *Plane) *pusher {
	return &pusher{p: p, kick: make(chan struct{}, 1), dirty: map[string]map[string]bool{}, sent: map[string][32]byte{}, missed: map[string]bool{}, sending: map[string]int{}}
}

// mark makes the members of networks ids of ns due for new views.
func (q *pusher) mark(ns string, ids ...string) {
	q.mu.Lock()
	d := q.dirty[ns]
	if d == nil {
		d = map[string]bool{}
		q.dirty[ns] = d
	}
	for _, id := range ids {
		d[id] = true
	}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// sentView records that container id has the view of digest h (it went
// in its Start).
func (q *pusher) sentView(id string, h [32]byte) {
	q.mu.Lock()
	q.sent[id] = h
	delete(q.missed, id)
	q.mu.Unlock()
}

// upToDate reports whether container id has had every view sent to it
// since its start, and none is being sent.
func (q *pusher) upToDate(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.missed[id] && q.sending[id] == 0
}

// forget drops what was sent to container id: its next view goes out.
func (q *pusher) forget(id string) {
	q.mu.Lock()
	delete(q.sent, id)
	delete(q.missed, id)
	q.mu.Unlock()
}

func (q *pusher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(q.p.cfg.Debounce):
		}
		q.mu.Lock()
		dirty := q.dirty
		q.dirty = map[string]map[string]bool{}
		q.mu.Unlock()
		for ns, ids := range dirty {
			q.rounds.Lock()
			q.round(ctx, ns, ids)
			q.rounds.Unlock()
		}
	}
}

// flush sends new views to the members of networks ids of ns now, and
// returns once they are sent: docker network connect and disconnect
// answer when the container's names and peers have changed.
func (q *pusher) flush(ctx context.Context, ns string, ids ...string) {
	q.flushWith(ctx, ns, nil, ids...)
}

// flushWith is flush that also sends container also its view (one that
// just left its last network gets a view without peers).
func (q *pusher) flushWith(ctx context.Context, ns string, also []string, ids ...string) {
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	q.rounds.Lock()
	defer q.rounds.Unlock()
	q.round(ctx, ns, set, also...)
}

// round sends new views to the members of networks ids of ns, and to the
// containers also.
func (q *pusher) round(ctx context.Context, ns string, ids map[string]bool, also ...string) {
	// The cached list: this process's own changes are in it (updated),
	// another process's show within the cache's TTL.
	nets, err := q.p.list(ctx, ns, false)
	if err != nil {
		q.p.log.Warn("network views: list networks", "namespace", ns, "err", err)
		return
	}
	members := map[string]bool{}
	for _, id := range also {
		members[id] = true
	}
	for _, n := range nets {
		if ids[n.ID] {
			for id := range n.Endpoints {
				members[id] = true
			}
		}
	}
	idx := indexes(nets)
	sem := make(chan struct{}, pushParallel)
	var wg sync.WaitGroup
	for id := range members {
		v, h := q.p.viewOf(ns, id, idx, nil)
		q.mu.Lock()
		same := q.sent[id] == h
		q.mu.Unlock()
		if same || q.p.cfg.Agents == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		q.mu.Lock()
		q.sending[id]++
		q.mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := q.p.cfg.Agents.SendView(sctx, ns, id, v)
			q.mu.Lock()
			defer q.mu.Unlock()
			if q.sending[id]--; q.sending[id] == 0 {
				delete(q.sending, id)
			}
			if err != nil {
				q.missed[id] = true
				q.p.log.Debug("network view not sent", "container", id, "err", err)
				return // it gets its view when its agent reports again (Listening)
			}
			q.sent[id] = h
		}()
	}
	wg.Wait()
}
