package ttlcache

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		op   func(c *Cache[string, int])
		want bool
	}{
		{"put then get", time.Hour, func(c *Cache[string, int]) { c.PutIf(c.Gen(), "k", 1) }, true},
		{"expired", 0, func(c *Cache[string, int]) { c.PutIf(c.Gen(), "k", 1) }, false},
		{"dropped", time.Hour, func(c *Cache[string, int]) { c.PutIf(c.Gen(), "k", 1); c.Drop("k") }, false},
		{"cleared", time.Hour, func(c *Cache[string, int]) { c.PutIf(c.Gen(), "k", 1); c.Clear() }, false},
		{"read raced with a drop", time.Hour, func(c *Cache[string, int]) {
			g := c.Gen()
			c.Drop("k")
			c.PutIf(g, "k", 1)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string, int](tt.ttl)
			tt.op(c)
			if v, ok := c.Get("k"); ok != tt.want || ok && v != 1 {
				t.Errorf("Get = %d, %v; want found %v", v, ok, tt.want)
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	c := New[int, int](time.Hour)
	for i := range maxEntries + 10 {
		c.PutIf(c.Gen(), i, i)
	}
	if n := len(c.m); n > maxEntries {
		t.Errorf("%d entries, want at most %d", n, maxEntries)
	}
}
