// Package archtest holds the dependency test: it reads the module's import
// graph (go list -deps) and fails when code points the wrong way — the
// agent importing control-plane code, the engine importing a cloud SDK, an
// HTTP router or a WebSocket library, one adapter importing another, or
// production code importing the Google simulation (gcpsim). The rules are
// in Rules; the test has no other code.
package archtest
