// Package engine is the container lifecycle of Sockerless: the domain types,
// the error kinds and the interfaces it consumes (Store, ImageSource,
// Functions, Agents). It imports no cloud SDK, HTTP router or WebSocket
// library; adapters implement its interfaces and cmd/ wires them together.
package engine
