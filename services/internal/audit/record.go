package audit

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// LogID is the Cloud Logging log the records go to.
const LogID = "sockerless-audit"

// Record is one audited call.
type Record struct {
	Time time.Time `json:"-"`
	// Who is the caller's member name; "" when authentication failed.
	Who       string `json:"who"`
	Namespace string `json:"namespace,omitempty"`
	Role      string `json:"role,omitempty"`
	// Source is the client's address.
	Source string `json:"source,omitempty"`
	Method string `json:"method"`
	// Path is the request path without its query or version prefix.
	Path string `json:"path"`
	// Action names the operation, e.g. "containers.start",
	// "containers.create", "auth.failed".
	Action string `json:"action"`
	// Object is the ID or name the call acts on, "" if none.
	Object string `json:"object,omitempty"`
	// Status is the HTTP status answered (101 or 200 for streams).
	Status int `json:"status"`
	// Reason says why authentication failed.
	Reason string `json:"reason,omitempty"`
}

// Sink takes records; Write must not block for long.
type Sink interface {
	Write(ctx context.Context, r Record)
}

// Mutating reports whether method changes state.
func Mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// describe names the action and object of a request: the resource kind
// and operation from the path, the object from the path's ID or, for
// creations, the query's name. Only these query values are read: others
// may hold anything.
func describe(r *http.Request) (path, action, object string) {
	path = r.URL.Path
	if m := versionPrefix.FindString(path); m != "" {
		path = path[len(m)-1:]
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	q := r.URL.Query()
	kind := segs[0]
	switch {
	case kind == "sockerless" && len(segs) >= 3: // /sockerless/v1/<what>[/<id>]
		action = "sockerless." + segs[2]
		if len(segs) > 3 {
			object = segs[3]
		}
	case kind == "images" && len(segs) >= 2:
		rest := strings.Join(segs[1:], "/")
		switch {
		case rest == "create":
			action, object = "images.pull", q.Get("fromImage")
			if t := q.Get("tag"); t != "" && object != "" {
				object += ":" + t
			}
		case rest == "load" || rest == "prune":
			action = "images." + rest
		case r.Method == http.MethodDelete:
			action, object = "images.delete", rest
		default:
			name, op := rest, ""
			if i := strings.LastIndexByte(rest, '/'); i > 0 {
				name, op = rest[:i], rest[i+1:]
			}
			action, object = "images."+op, name
		}
	case len(segs) >= 2 && segs[1] == "create":
		action, object = kind+".create", q.Get("name")
	case kind == "commit":
		action, object = "commit", q.Get("container")
	case len(segs) >= 3:
		action, object = kind+"."+segs[len(segs)-1], segs[1]
	case len(segs) == 2 && (segs[1] == "prune"):
		action = kind + ".prune"
	case len(segs) == 2:
		action, object = kind+"."+strings.ToLower(r.Method), segs[1]
	default:
		action = kind + "." + strings.ToLower(r.Method)
	}
	return path, action, object
}
