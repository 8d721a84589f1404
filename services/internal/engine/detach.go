package engine

import (
	"bytes"
	"errors"
	"io"
	"strings"
)

// DefaultDetachKeys is docker's escape sequence: ctrl-p ctrl-q.
const DefaultDetachKeys = "ctrl-p,ctrl-q"

// errDetached ends an attach whose client typed the detach keys.
var errDetached = errors.New("read escape sequence")

// ParseDetachKeys reads docker's detach key syntax: comma-separated keys,
// each a single character or "ctrl-<c>" for c in a-z, @, [, \, ], ^, _.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = DefaultDetachKeys
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(strings.ToLower(k), "ctrl-") && len(k) == 6:
			c := strings.ToLower(k)[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c == '[', c == '\\', c == ']', c == '^', c == '_':
				out = append(out, c-'@')
			default:
				return nil, Errorf(KindInvalid, "Invalid detach keys (%s) provided", s)
			}
		default:
			return nil, Errorf(KindInvalid, "Invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}

// attachInput prepares a client's input for a process: on a terminal it
// watches for the detach keys (as docker, only there).
func attachInput(r io.Reader, detachKeys string, tty bool) (io.Reader, error) {
	keys, err := ParseDetachKeys(detachKeys)
	if err != nil {
		return nil, err
	}
	if tty {
		return newEscapeReader(r, keys), nil
	}
	return r, nil
}

// escapeReader passes input through until the detach sequence, then
// returns errDetached; bytes that might start the sequence are held back
// until it is clear they do not.
type escapeReader struct {
	r    io.Reader
	keys []byte
	held []byte // a prefix of keys read but not passed on
	out  []byte // bytes ready to pass on
	err  error
}

func newEscapeReader(r io.Reader, keys []byte) io.Reader {
	if len(keys) == 0 {
		return r
	}
	return &escapeReader{r: r, keys: keys}
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			e.held = append(e.held, b)
			if bytes.HasPrefix(e.keys, e.held) {
				if len(e.held) == len(e.keys) {
					e.held = nil
					e.err = errDetached
					break
				}
				continue
			}
			// not the sequence: release held bytes up to a new possible start
			e.out = append(e.out, e.held[0])
			e.held = e.held[1:]
			for len(e.held) > 0 && !bytes.HasPrefix(e.keys, e.held) {
				e.out = append(e.out, e.held[0])
				e.held = e.held[1:]
			}
		}
		if err != nil && e.err == nil {
			e.out = append(e.out, e.held...)
			e.held = nil
			e.err = err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}
