// Package bolt is the embedded Store (engine.Store) on go.etcd.io/bbolt, for
// a control plane on one machine (--dev). Every method is one bolt
// transaction, so each is atomic and durable (fsync on commit).
//
// Buckets:
//
//	containers  container ID → JSON engine.Container
//	names       namespace "\x00" name → container ID (unique names)
//	images      image ID → JSON engine.Image
//	refs        repo tag or repo digest → image ID
//	functions   function key → JSON engine.Function
//	logs        container ID → nested bucket: big-endian seq → JSON entry
package bolt
