// Package audit records who changed what: every mutating request (POST,
// PUT, PATCH, DELETE on the Docker API and the sockerless admin endpoints)
// and every failed authentication becomes one Record — who (the
// authenticated identity), what (method, path, action), which object,
// the result status and the client's address — written to Cloud Logging
// (cloud.google.com/go/logging) and, in --dev, to the control plane's own
// log.
//
// A record never holds a secret: no header (Authorization,
// X-Registry-Auth), no body (environment values, registry passwords), no
// query value but the object's name.
//
// Files: record.go (Record, describing a request), middleware.go (the
// HTTP middleware), sinks.go (Cloud Logging and slog).
package audit
