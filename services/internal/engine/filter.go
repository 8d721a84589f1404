package engine

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Filters are docker's list filters: key → accepted values. Values of one
// key are alternatives (except label, where all must hold); keys combine.
type Filters map[string][]string

// listKeys are the filters GET /containers/json accepts.
var listKeys = map[string]bool{"id": true, "name": true, "label": true, "status": true, "exited": true, "ancestor": true, "before": true, "since": true, "network": true, "health": true, "volume": true, "expose": true, "publish": true, "isolation": true, "is-task": true}

// ListOptions select containers for ps.
type ListOptions struct {
	All     bool
	Limit   int
	Filters Filters
}

// List returns the namespace's containers that match opts, newest first.
func (e *Engine) List(ctx context.Context, ns string, opts ListOptions) ([]*Container, error) {
	for k := range opts.Filters {
		if !listKeys[k] {
			return nil, Errorf(KindInvalid, "invalid filter '%s'", k)
		}
	}
	for _, s := range opts.Filters["status"] {
		switch s {
		case StatusCreated, StatusRunning, StatusPaused, StatusRestarting, StatusRemoving, StatusExited, StatusDead:
		default:
			return nil, Errorf(KindInvalid, "invalid filter 'status=%s'", s)
		}
	}
	cs, err := e.cfg.Store.ListContainers(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var imgID map[string]bool
	if refs := opts.Filters["ancestor"]; len(refs) > 0 {
		imgID = map[string]bool{}
		for _, r := range refs {
			if img, err := e.Image(ctx, r); err == nil {
				imgID[img.ID] = true
			}
		}
	}
	names := compileNames(opts.Filters["name"])
	out := cs[:0]
	for _, c := range cs {
		if !opts.All && !running(c) && len(opts.Filters["status"]) == 0 && len(opts.Filters["exited"]) == 0 {
			continue
		}
		if !opts.Filters.match(c, imgID, names) {
			continue
		}
		out = append(out, c)
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// compileNames compiles the name filters once per list, not once per
// container; a value that is no expression matches nothing.
func compileNames(vs []string) map[string]*regexp.Regexp {
	out := make(map[string]*regexp.Regexp, len(vs))
	for _, v := range vs {
		re, _ := regexp.Compile(strings.TrimPrefix(v, "/"))
		out[v] = re
	}
	return out
}

func (f Filters) match(c *Container, imgID map[string]bool, names map[string]*regexp.Regexp) bool {
	if !anyOf(f["id"], func(v string) bool { return strings.HasPrefix(c.ID, v) }) {
		return false
	}
	if !anyOf(f["name"], func(v string) bool {
		re := names[v]
		return re != nil && re.MatchString(c.Name)
	}) {
		return false
	}
	if !anyOf(f["status"], func(v string) bool { return c.State.Status == v }) {
		return false
	}
	if !anyOf(f["exited"], func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && c.State.Status == StatusExited && c.State.ExitCode == n
	}) {
		return false
	}
	if imgID != nil && !imgID[c.ImageID] {
		return false
	}
	if !anyOf(f["volume"], func(v string) bool { return usesVolume(c, v) }) {
		return false
	}
	return matchLabels(f["label"], c.Config.Labels, true) && matchLabels(f["label!"], c.Config.Labels, false)
}

// matchPrune applies prune's filters: until and label.
func (f Filters) matchPrune(c *Container) bool {
	for _, u := range f["until"] {
		t, err := parseTime(u)
		if err == nil && !c.Created.Before(t) {
			return false
		}
	}
	return matchLabels(f["label"], c.Config.Labels, true) && matchLabels(f["label!"], c.Config.Labels, false)
}

// anyOf is true if vals is empty or ok holds for one of them.
func anyOf(vals []string, ok func(string) bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if ok(v) {
			return true
		}
	}
	return false
}

// matchLabels checks "k" (present) and "k=v" (equal) filters; want=false
// inverts each (label!=).
func matchLabels(filters []string, labels map[string]string, want bool) bool {
	for _, lf := range filters {
		k, v, hasV := strings.Cut(lf, "=")
		got, ok := labels[k]
		hit := ok && (!hasV || got == v)
		if hit != want {
			return false
		}
	}
	return true
}

// parseTime reads docker's time filter values: RFC 3339, Unix seconds
// (with fraction), or a duration before now ("10m").
func parseTime(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// Unix seconds with up to nine decimals, read exactly (a float64 would
	// round away the nanoseconds a resumed event stream depends on).
	secs, frac, _ := strings.Cut(s, ".")
	if sec, err := strconv.ParseInt(secs, 10, 64); err == nil && len(frac) <= 9 {
		nsec := int64(0)
		if frac != "" {
			n, err := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
			if err != nil || n < 0 {
				return time.Time{}, Errorf(KindInvalid, "cannot parse time %q", s)
			}
			nsec = n
		}
		return time.Unix(sec, nsec), nil
	}
	return time.Time{}, Errorf(KindInvalid, "cannot parse time %q", s)
}

// ParseTime is parseTime for the API layer (since/until query values).
func ParseTime(s string) (time.Time, error) { return parseTime(s) }
