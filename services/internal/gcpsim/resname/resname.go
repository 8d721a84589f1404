// Package resname parses and builds the Google resource names gcpsim's APIs
// use ("projects/P/locations/L/services/S") and checks resource IDs, so the
// simulated APIs reject the same malformed names Google rejects.
package resname

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Location is a parsed "projects/P/locations/L".
type Location struct {
	Project  string
	Location string
}

// String returns "projects/P/locations/L".
func (l Location) String() string {
	return "projects/" + l.Project + "/locations/" + l.Location
}

// Child returns "projects/P/locations/L/<collection>/<id>".
func (l Location) Child(collection, id string) string {
	return l.String() + "/" + collection + "/" + id
}

// NewOperation returns a fresh operation name in l.
func (l Location) NewOperation() string {
	return l.Child("operations", "operation-"+RandomHex(12))
}

var (
	locationRE = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)$`)
	childRE    = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)/([^/]+)/([^/]+)$`)
)

// ParseLocation parses "projects/P/locations/L" (L may be "-" when
// wildcard is true) and returns an InvalidArgument status error otherwise.
func ParseLocation(name string, wildcard bool) (Location, error) {
	m := locationRE.FindStringSubmatch(name)
	if m == nil || (!wildcard && m[2] == "-") || m[1] == "-" {
		return Location{}, status.Errorf(codes.InvalidArgument, "invalid parent %q: want projects/PROJECT/locations/LOCATION", name)
	}
	return Location{Project: m[1], Location: m[2]}, nil
}

// ParseChild parses "projects/P/locations/L/<collection>/<id>" and returns
// an InvalidArgument status error for any other shape.
func ParseChild(name, collection string) (Location, string, error) {
	m := childRE.FindStringSubmatch(name)
	if m == nil || m[3] != collection || m[2] == "-" {
		return Location{}, "", status.Errorf(codes.InvalidArgument, "invalid name %q: want projects/PROJECT/locations/LOCATION/%s/ID", name, collection)
	}
	return Location{Project: m[1], Location: m[2]}, m[4], nil
}

var idRE = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)

// CheckID checks a function or service ID: lower-case letters, digits and
// hyphens, starting with a letter, not ending with a hyphen, at most max
// characters. It returns an InvalidArgument status error.
func CheckID(kind, id string, max int) error {
	if id == "" {
		return status.Errorf(codes.InvalidArgument, "%s id is required", kind)
	}
	if len(id) > max || !idRE.MatchString(id) {
		return status.Errorf(codes.InvalidArgument,
			"invalid %s id %q: use lower-case letters, digits and hyphens, start with a letter, at most %d characters", kind, id, max)
	}
	return nil
}

// Matches reports whether name lies in parent, where parent's location may
// be the wildcard "-".
func Matches(parent Location, name string) bool {
	if parent.Location == "-" {
		return strings.HasPrefix(name, "projects/"+parent.Project+"/locations/")
	}
	return strings.HasPrefix(name, parent.String()+"/")
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never returns an error (it crashes instead)
	return hex.EncodeToString(b)
}
