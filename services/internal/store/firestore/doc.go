// Package firestore is the hosted Store (engine.Store) on Cloud Firestore
// (native mode), shared by every control plane instance of a deployment.
// Every state change is one Firestore transaction (or one commit of
// writes that read nothing) whose writes carry preconditions (create only if absent, update only if
// present, or only if unchanged since a known update time), so two
// instances stay consistent: of two creates of one name exactly one
// commits, the other gets engine.ErrConflict. Within one process,
// transactions on one record are also queued behind a striped lock, so
// the agent hub's appends and the engine's updates of a container do not
// abort each other and back off for seconds.
//
// # Layout
//
// All collections hang under one root document (Options.Root, default
// "sockerless/default"), so several deployments or tests share a
// database. Document IDs are the keys escaped by docID (bytes outside
// [A-Za-z0-9-._~:@+=,] and a leading "_" as %XX), which keeps prefixes.
//
//	namespaces/{ns}/containers/{name}   one container, keyed by its name, so the document
//	                                    is the name's reservation: ns, id, json (the
//	                                    engine.Container), gen, the log bookkeeping (chunks,
//	                                    tailBytes, tailEntries), the inline log (log,
//	                                    logBytes), w, the token of the write that made it,
//	                                    and pub, whether its run binds host ports
//	images/{id}                         json: the engine.Image
//	refs/{repo tag or repo digest}      id: the image the ref names (one image per ref)
//	functions/{key}                     json: the engine.Function
//	logs/{id}~{gen}/chunks/{%08d n}     log chunk n of a container: first, last, and
//	                                    e, a map from "%016x" seq to a piece
//	namespaces/{ns}/events/{first key}  a batch of docker events: first, last (its key
//	                                    range) and json; read by last > after, pruned
//	                                    by first < before
//	namespaces/{ns}/networks/{id}       json: a docker network (netplane.Network) with its
//	                                    running members (endpoints)
//	namespaces/{ns}/netnames/{name}     id: the reservation of a network name
//	namespaces/{ns}/subnets/{cidr}      id: the reservation of a network's subnet
//	namespaces/{ns}/removed/{id}        the final document of a container removed with
//	                                    its exit (a container document and expires)
//
// A container create is one write: its document, with the precondition
// that it does not exist (the ID is not checked: the engine's are 256
// random bits). A rename creates the document of the new name (a taken
// name conflicts) and deletes the old one, in one transaction. A container
// is found by its ID with a query on the id field (one read), or, when
// this process knows its name, with a read of its document (one read; a
// query after all if another process renamed it). Lookups by ID prefix are
// range queries on the id field limited to two results, image prefixes on
// the document ID. Lists read a namespace's collection and sort in memory
// (the publish plane's list of containers binding host ports, read for a
// start's view, is a query on pub: its reads are those containers alone);
// ContainerNamespaces lists the namespace documents and queries each one's
// containers (limit 1). No composite or collection group index is needed.
//
// # Logs
//
// AppendLogs is one transaction: it reads the container, assigns the
// seqs, advances LogSeq and the acked map, and writes the entries. The
// first entries (up to 64 KiB or 256 entries) live in the container
// document itself, so a container with little output never writes a log
// document. After that, entries go into chunk documents of at most
// 256 KiB of payload and 500 entries, appended to the tail chunk by field
// updates (no read of it) and to new chunks when it is full; an entry too
// big for a chunk is split into pieces across consecutive chunks. A piece
// is compact binary: kind (whole, or continued in the next chunk),
// uvarint stream, varint Unix seconds, uvarint nanoseconds, data.
// ReadLogs reads the container, takes the inline entries, then queries the
// chunks with last > after ordered by last, as far as the limit needs.
// The log collection is named by a random generation made at create, so
// chunks left behind by a removed container are never read by a new
// container of the same ID. DeleteContainer removes the container (and so
// frees its name) and up to 400 chunks in one transaction, any further
// chunks in bulk after it.
//
// # Changes without reads
//
// The store keeps, per container (by ID) and network, the last state of
// its document this process read or wrote, with its update time and, for
// a container, the document's name (known). A change of a known record is
// computed on that state and written with the precondition that the
// document still has that update time: one call, no read. If another
// process changed (or renamed) the document meanwhile, the precondition
// fails and the change runs again as a transaction that reads it. While a
// container is watched (WatchContainer, for the engine's waiters: a
// listener on the query of its id, so it follows a rename), its reads are
// answered from that state too: the watch brings other processes'
// changes, with the listener's delay.
//
// # An --rm container's end
//
// The last exit of an --rm container and its removal are one Commit
// (AppendLogsRemove, engine.FinalRemover), on the state this process
// knows of a container whose output is all in its document: the deletion
// of its document, preconditioned on that state, and a final document in
// removed/{id} holding the container as the exit left it, with its inline
// log. Its followers and waiters, here and on other control planes, read
// its last output (ReadLogs) and its exit (Removed) there once the
// container is gone; they serve for ten minutes (expires, the field of
// the deployment's Firestore TTL policy). Otherwise the exit is written
// and the engine removes the container after it, a round trip more.
//
// Writes that read nothing (those of a known state, with the log chunks
// or the final document they take along) go in one WriteBatch: one
// Commit call, all or none. A transaction would begin with a round trip
// of its own (BeginTransaction).
//
// # Lost answers
//
// A container write whose answer is lost (CANCELLED, UNAVAILABLE, a
// commit the client retried that then failed its precondition) may have
// landed. The writer reads the document back and compares its w field, a
// random token each write sets, with its own: its write landed (done), or
// it did not, and as a write with a precondition it cannot land later
// over another one (a create is tried again, a change decided again on
// the record). A delete looks the container up by its ID; a removal with
// the exit reads the final document back.
//
// # Cost
//
// No document is written by every event of the system: each write touches
// the records of one container, image or function. A short container's
// life (create, start, one output batch, exit, remove) takes six writes
// and no read of its own (TestContainerLifeCost), five when the output
// and the exit are stored together (AppendLogsUpdate); Stats counts
// them, and SOCKERLESS_STORE_TRACE=1 logs who spends each read and write.
// Deployments should exempt the json, log and e fields from indexing:
// they are never queried.
//
// State changes run detached from the caller's cancellation (bounded by
// Options.WriteTimeout), as with the embedded store; reads use the
// caller's context.
package firestore
