// Package storetest is the one conformance suite for engine.Store. Every
// implementation's tests call Run with a constructor for a fresh, empty
// store, so the embedded store and the Firestore one keep exactly the same
// semantics: unique names per namespace, lookups as docker resolves them,
// atomic read-modify-write under concurrency, log sequence numbers and acks,
// image refs that move between images, create-if-absent functions.
//
// Persistence across a reopen is an implementation's own test: only it
// knows how to open the same store again.
package storetest
