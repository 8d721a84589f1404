// Package dockerapi serves the Docker Engine API on go-chi/chi over the
// engine: one route table (routes.go) naming every supported operation and
// every unsupported one (501), handlers that decode moby types, call the
// engine and encode moby types, and one function turning engine errors into
// Docker's {"message": …} with the right status.
//
// Paths are served with and without the "/vX.Y" version prefix; versions
// below MinAPIVersion or above APIVersion are refused as dockerd does.
package dockerapi
