package engine

import (
	"errors"
	"fmt"
)

// Kind classifies an error the way the Docker API reports it.
type Kind int

// Error kinds; dockerapi maps each to an HTTP status.
const (
	KindInternal        Kind = iota // 500
	KindNotFound                    // 404
	KindInvalid                     // 400
	KindConflict                    // 409
	KindNotModified                 // 304
	KindNotImplemented              // 501
	KindUnauthorized                // 401
	KindUnavailable                 // 503
	KindForbidden                   // 403 (an operation docker refuses on an object's state, e.g. removing a network with active endpoints)
	KindTooManyRequests             // 429 (a namespace's quota or a caller's rate limit)
)

// Error is an error with a kind and a message safe to show a client.
type Error struct {
	Kind    Kind
	Message string
	Err     error // the cause, logged but not sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted public message.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of the first *Error in err's chain, KindInternal if none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrInstanceEnded is AgentBackend.AuthorizeAgent's answer to an agent
// with the right secret whose instance the engine has ended (it gave up
// on the start, or found the instance gone), and to any agent of a
// container the engine removed lately: the hub refuses it for good
// (proto.StatusInstanceEnded), and the agent ends its instance.
var ErrInstanceEnded = &Error{Kind: KindForbidden, Message: "the control plane has ended this instance"}

// Sentinel errors stores return; callers wrap them with docker's wording.
var (
	// ErrNotFound: no such record.
	ErrNotFound = &Error{Kind: KindNotFound, Message: "not found"}
	// ErrConflict: a unique key (container name) is taken, or a precondition failed.
	ErrConflict = &Error{Kind: KindConflict, Message: "conflict"}
	// ErrAmbiguous: an ID prefix matches more than one record.
	ErrAmbiguous = &Error{Kind: KindInvalid, Message: "ambiguous reference"}
)

// ErrBusy is what Functions.Invoke wraps when the request did not reach an
// instance that could take it: none was free (429), or the platform routed
// it to an instance that serves another container (an instance whose
// invocation was cut by a control plane restart looks idle to the
// platform). Trying again may reach another instance.
var ErrBusy = &Error{Kind: KindUnavailable, Message: "no function instance could take the invocation"}

// ErrQuota is what a functions backend wraps when Google refused a call
// over quota (RESOURCE_EXHAUSTED, HTTP 429). Trying again later succeeds
// once the quota's window has moved on.
var ErrQuota = &Error{Kind: KindUnavailable, Message: "over the cloud's API quota"}
