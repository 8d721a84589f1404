// Package run is gcpsim's Cloud Run Admin API v2 Services server
// (google.cloud.run.v2.Services over gRPC). It keeps services and their
// revisions in memory; each template change makes a new revision that takes
// all traffic when its long-running operation completes. The function URL
// router asks Serving for the revision to run, and Retired hooks tell the
// instance manager when a revision stops serving.
package run
