// Package engine is the container lifecycle of Sockerless: the domain types,
// the error kinds and the interfaces it consumes (Store, ImageSource,
// Functions, Fleet, Agents). The functions themselves (making one per
// image, sharing it, collecting unused ones) are package fleet's, behind
// Fleet: each invocation holds a Lease on its function. It imports no cloud
// SDK, HTTP router or WebSocket library; adapters implement its interfaces
// and cmd/ wires them together.
package engine
