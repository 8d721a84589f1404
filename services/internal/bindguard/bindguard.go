// Package bindguard is the forwarder's record of the host paths its user
// bound into containers: the control plane syncs a bind's files through
// the forwarder (package clientlink), and the forwarder serves only paths
// that a container create it carried asked for — so a control plane, shared
// by a team, can never read or write anything else on the user's machine.
//
// The record outlives a forwarder restart (a JSON file), so running
// containers keep their binds, and holds at most MaxGrants paths, the
// least recently granted going first.
package bindguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MaxGrants bounds the record: past it, the oldest grants go.
const MaxGrants = 4096

// ErrNotGranted is the answer for a path no create asked for.
var ErrNotGranted = errors.New("not bound by a container created through this forwarder")

// grant is one host path a create bound.
type grant struct {
	// RW says some create bound it writable.
	RW bool `json:"rw,omitempty"`
	// At is when it was last granted, for eviction.
	At time.Time `json:"at"`
}

// Guard records granted host paths and checks the control plane's opens.
type Guard struct {
	file string // "" keeps the record in memory only

	mu     sync.Mutex
	grants map[string]grant
}

// Open returns a Guard whose record lives in file (created with its
// directory when first written; "" keeps it in memory).
func Open(file string) (*Guard, error) {
	g := &Guard{file: file, grants: map[string]grant{}}
	if file == "" {
		return g, nil
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return g, nil
	case err != nil:
		return nil, fmt.Errorf("read bind record: %w", err)
	}
	if err := json.Unmarshal(b, &g.grants); err != nil {
		return nil, fmt.Errorf("read bind record %s: %w", file, err)
	}
	return g, nil
}

// createBody is what a container create says about host binds.
type createBody struct {
	HostConfig *struct {
		Binds  []string
		Mounts []struct {
			Type     string
			Source   string
			ReadOnly bool
		}
	}
}

// RecordCreate grants the host paths a POST /containers/create body binds
// (HostConfig.Binds "SRC:DST[:OPTS]" with an absolute SRC, and Mounts of
// type bind). A body that is not JSON grants nothing.
func (g *Guard) RecordCreate(body []byte) error {
	var c createBody
	if json.Unmarshal(body, &c) != nil || c.HostConfig == nil {
		return nil
	}
	add := map[string]bool{}
	for _, b := range c.HostConfig.Binds {
		src, rest, _ := strings.Cut(b, ":")
		if !strings.HasPrefix(src, "/") {
			continue // a named volume
		}
		_, opts, _ := strings.Cut(rest, ":")
		ro := false
		for _, o := range strings.Split(opts, ",") {
			ro = ro || o == "ro"
		}
		add[path.Clean(src)] = add[path.Clean(src)] || !ro
	}
	for _, m := range c.HostConfig.Mounts {
		if m.Type == "bind" && strings.HasPrefix(m.Source, "/") {
			add[path.Clean(m.Source)] = add[path.Clean(m.Source)] || !m.ReadOnly
		}
	}
	if len(add) == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now().UTC()
	for p, rw := range add {
		g.grants[p] = grant{RW: rw || g.grants[p].RW, At: now}
	}
	for len(g.grants) > MaxGrants {
		oldest, at := "", now
		for p, gr := range g.grants {
			if gr.At.Before(at) || oldest == "" {
				oldest, at = p, gr.At
			}
		}
		delete(g.grants, oldest)
	}
	return g.save()
}

// Allow checks an open of host path p: it must be a granted path or lie
// under one, writable only if a create bound it writable, and created
// (create) only if it is itself a granted path, as docker -v creates a
// missing source.
func (g *Guard) Allow(p string, readOnly, create bool) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("host path %q: %w", p, ErrNotGranted)
	}
	p = path.Clean(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	found, rw := false, false
	for q := p; ; q = path.Dir(q) {
		if gr, ok := g.grants[q]; ok && (!create || q == p) {
			found, rw = true, rw || gr.RW
		}
		if q == "/" {
			break
		}
	}
	switch {
	case !found:
		return fmt.Errorf("host path %s: %w", p, ErrNotGranted)
	case !readOnly && !rw:
		return fmt.Errorf("host path %s: bound read-only, asked for writing: %w", p, ErrNotGranted)
	}
	return nil
}

// save writes the record (g.mu held): to a temporary file, then renamed
// over the old one, so a crash leaves one or the other.
func (g *Guard) save() error {
	if g.file == "" {
		return nil
	}
	b, err := json.Marshal(g.grants)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(g.file), 0o700); err != nil {
		return fmt.Errorf("save bind record: %w", err)
	}
	tmp := g.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save bind record: %w", err)
	}
	if err := os.Rename(tmp, g.file); err != nil {
		return fmt.Errorf("save bind record: %w", err)
	}
	return nil
}
