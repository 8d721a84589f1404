// Package bolt is the embedded Store (engine.Store) on go.etcd.io/bbolt, for
// a control plane on one machine (--dev). Every method is one bolt
// transaction, so each is atomic and durable (fsync on commit unless
// Options.NoSync). The file is locked: a second process opening it fails
// after two seconds instead of sharing it.
//
// Buckets:
//
//	containers  container ID → JSON engine.Container
//	names       namespace "\x00" name → container ID (unique names)
//	images      image ID → JSON engine.Image
//	refs        repo tag or repo digest → image ID (each ref names one image)
//	functions   function key → JSON engine.Function
//	logs        container ID → nested bucket: big-endian seq → entry
//
// Log entries are compact binary (see encodeEntry) since they carry all of
// a container's output; entries stored as JSON by earlier versions still
// read. The methods take a ctx for the interface but do not consult it: a
// transaction is short and local, and a state change must not be lost
// because the client that caused it went away.
package bolt
