// Package e2e holds black-box tests of Sockerless with real clients: the
// docker CLI on this machine (directly on the dev socket and through the
// forwarder), against a dev stack started from freshly built binaries and a
// local registry seeded with images built from Debian's busybox-static.
// Benchmarks here compare the same scenarios with the machine's Docker
// engine when one answers.
package e2e
