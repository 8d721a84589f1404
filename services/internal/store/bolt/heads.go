package bolt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// maxHeads bounds the cache of records AppendLogs wrote; past it the cache
// starts over (it holds the running containers' in practice).
const maxHeads = 4096

// heads caches, by container, the record AppendLogs last wrote and what
// it decodes to. A running container's record changes with each batch of
// its output (LogSeq, LogBytes, Acked), so decoding it for every batch was
// the largest part of the control plane's CPU per log line; now the
// stored bytes are compared with the cached ones and decoded only when
// something else wrote the record since. Keyed by the exact bytes, an
// entry is right even if the transaction that wrote it was rolled back.
type heads struct {
	mu sync.Mutex
	m  map[string]head
}

type head struct {
	raw []byte
	c   engine.Container
}

// decode returns container id's record raw decoded: a copy of the cached
// one if raw is what AppendLogs wrote last. The copy's Acked is its own;
// its other fields share memory with the cache and must not be modified.
func (h *heads) decode(id string, raw []byte) (*engine.Container, error) {
	h.mu.Lock()
	e, ok := h.m[id]
	h.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		c := e.c
		c.Acked = maps.Clone(e.c.Acked)
		return &c, nil
	}
	var c engine.Container
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", id, err)
	}
	return &c, nil
}

// put records that raw, c's encoding, is container id's record now.
func (h *heads) put(id string, raw []byte, c *engine.Container) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxHeads {
		h.m = map[string]head{}
	}
	e := head{raw: raw, c: *c}
	e.c.Acked = maps.Clone(c.Acked)
	h.m[id] = e
}

// drop forgets container id (removed).
func (h *heads) drop(id string) {
	h.mu.Lock()
	delete(h.m, id)
	h.mu.Unlock()
}
