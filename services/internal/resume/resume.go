// Package resume names the headers with which the forwarder resumes a
// followed log stream that a control plane restart cut, so the docker CLI
// behind it sees one stream without a gap or a duplicate. (Event streams
// need no headers: events are stored, and the forwarder asks again since
// the last event's time, dropping the ones its client has.)
//
// The control plane answers GET /containers/{id}/logs with HeaderAnchor:
// the container's last log sequence number at that moment, which pins what
// --tail counts from. Log entries never change and their encoding is
// fixed, so the same request with that anchor produces the same bytes; the
// forwarder sends it again with HeaderAnchor and HeaderSkip (the bytes its
// client already has), and the control plane leaves those out. A stream
// cut by a shutdown ends abruptly (no final chunk), never like a finished
// one, so the forwarder can tell the two apart.
package resume

import (
	"strconv"
)

// Header names.
const (
	// HeaderAnchor pins the selection of a log stream (a decimal number).
	HeaderAnchor = "X-Sockerless-Log-Anchor"
	// HeaderSkip is how many bytes of the stream the client already has.
	HeaderSkip = "X-Sockerless-Resume-Skip"
)

// Parse reads a header's decimal value; ok is false if it is absent or
// not a number.
func Parse(v string) (n uint64, ok bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	return n, err == nil
}
