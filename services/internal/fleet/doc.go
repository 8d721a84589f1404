// Package fleet keeps the Cloud Functions that containers run on: one
// function per image, made once and shared by every container of that
// image (DESIGN.md decisions 1 and 2). The engine consumes it through
// engine.Fleet: it asks for a lease on an image's function for each
// invocation, and fleet makes the function on first use, makes concurrent
// starts of one image wait for the one creation, and never collects a
// function while a lease on it is held.
//
// The function records live in the store (engine.Store's function
// methods), so several control planes on one store create each function
// once; the waits between processes fall back to polling the store.
package fleet
