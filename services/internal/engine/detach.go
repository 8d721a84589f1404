package engine

import (
	"errors"
	"io"

	"github.com/moby/term"
)

// DefaultDetachKeys is docker's escape sequence: ctrl-p ctrl-q.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// ParseDetachKeys reads docker's detach key syntax (comma-separated keys,
// each a single character or "ctrl-<c>") with the parser the Docker engine
// uses, so the same strings are accepted and refused.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = DefaultDetachKeys
	}
	keys, err := term.ToBytes(s)
	if err != nil {
		return nil, Errorf(KindInvalid, "Invalid detach keys (%s) provided", s)
	}
	return keys, nil
}

// attachInput prepares a client's input for a process: on a terminal it
// watches for the detach keys (as docker, only there) through the Docker
// engine's escape proxy.
func attachInput(r io.Reader, detachKeys string, tty bool) (io.Reader, error) {
	keys, err := ParseDetachKeys(detachKeys)
	if err != nil {
		return nil, err
	}
	if tty && len(keys) > 0 {
		return term.NewEscapeProxy(r, keys), nil
	}
	return r, nil
}

// isDetach reports whether a read from attachInput's reader ended because
// the client typed the detach keys.
func isDetach(err error) bool {
	var esc term.EscapeError
	return errors.As(err, &esc)
}
