// Package ttlcache keeps values for a short time: what a control plane
// read from the store and may serve again for a moment instead of reading
// it once more. Another control plane's change shows once an entry's time
// is up; the owner drops entries it changes itself. Reads joins a read
// of a key already under way.
package ttlcache

import (
	"sync"
	"time"
)

// maxEntries bounds a cache: past it, expired entries are swept on Put,
// and if none are, the cache is emptied (it only saves reads).
const maxEntries = 4096

// Cache maps keys to values for TTL after they were put. The zero value
// is not usable: make one with New.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[K]entry[V]
	gen uint64
}

type entry[V any] struct {
	v  V
	at time.Time
}

// New makes a cache whose entries serve for ttl.
func New[K comparable, V any](ttl time.Duration) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, m: map[K]entry[V]{}}
}

// Get returns k's value if it was put less than the TTL ago.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Since(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Gen returns the cache's generation, to pass to PutIf: a value read
// from the store after Gen is put only if nothing was dropped meanwhile,
// so a read that raced with this process's own change is not kept.
func (c *Cache[K, V]) Gen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// PutIf stores v for k, read at the time of generation gen, unless an
// entry was dropped since.
func (c *Cache[K, V]) PutIf(gen uint64, k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= maxEntries {
		for key, e := range c.m {
			if time.Since(e.at) >= c.ttl {
				delete(c.m, key)
			}
		}
		if len(c.m) >= maxEntries {
			clear(c.m)
		}
	}
	c.m[k] = entry[V]{v: v, at: time.Now()}
}

// Drop forgets k (this process changed it).
func (c *Cache[K, V]) Drop(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, k)
	c.gen++
}

// Clear forgets everything.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.gen++
}
