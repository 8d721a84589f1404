package firestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/ttlcache"
)

// DefaultRoot is the document under which a store keeps its collections
// unless Options.Root names another.
const DefaultRoot = "sockerless/default"

// Options tune the store.
type Options struct {
	// Root is the document path ("collection/doc", or deeper with an even
	// number of segments) that holds the store's collections. Several
	// stores (tests, environments) share one database under distinct roots.
	// Empty: DefaultRoot.
	Root string
	// Database is the Firestore database ID. Empty: "(default)".
	Database string
	// MaxAttempts bounds the tries of one transaction under contention.
	// Zero: 30.
	MaxAttempts int
	// WriteTimeout bounds a state change, which runs detached from the
	// caller's cancellation (as the embedded store, a change must not be
	// lost because the client that caused it went away). Zero: 30 s.
	WriteTimeout time.Duration
	// Latency, on the emulator only, delays every Firestore call (and the
	// opening of every stream) by this much, to model a hosted control
	// plane's round trips to Firestore.
	Latency time.Duration

	// unary, on the emulator only, wraps every unary call (a test's, to
	// lose answers).
	unary grpc.UnaryClientInterceptor
}

// Store is engine.Store on Cloud Firestore. Every state change is one
// Firestore transaction; see the package doc for the layout.
type Store struct {
	client       *firestore.Client
	root         *firestore.DocumentRef
	maxAttempts  int
	writeTimeout time.Duration

	reads, writes atomic.Int64
	// eventWrites are the writes of event batches (and their pruning),
	// counted in writes too: how many a workload costs depends on how its
	// events fall into the engine's flushes.
	eventWrites atomic.Int64
	// locks serialise this process's transactions on one record (striped
	// by key), so the hub's appends and the engine's updates of a
	// container queue here instead of aborting each other in Firestore
	// and backing off for seconds. Other processes still meet Firestore's
	// transactions.
	locks [64]sync.Mutex
	// own are the container states this process wrote, for its watches.
	own ownWrites
	// known are the container states this process last read or wrote,
	// for changes without a read.
	known    known[containerDoc]
	knownNet known[networkDoc]
	// refIDs are the image IDs refs last named when this process read or
	// wrote them, to read a ref and its image in one call. They only save
	// a call (every read checks the ref itself), so they serve long.
	refIDs *ttlcache.Cache[string, string]
	// finals are the final documents of the containers this process
	// removed with their exit (AppendLogsRemove), for their followers and
	// waiters here.
	finals *ttlcache.Cache[string, finalDoc]
}

var (
	_ engine.Store            = (*Store)(nil)
	_ engine.ContainerWatcher = (*Store)(nil)
	_ engine.KnownContainers  = (*Store)(nil)
)

// Open connects to Firestore in project (or to the emulator named by
// FIRESTORE_EMULATOR_HOST, which the client honours by itself).
func Open(ctx context.Context, project string, opts ...Options) (*Store, error) {
	if project == "" {
		return nil, errors.New("open firestore store: no project")
	}
	var o Options
	for _, x := range opts {
		if x.Root != "" {
			o.Root = x.Root
		}
		if x.Database != "" {
			o.Database = x.Database
		}
		if x.MaxAttempts > 0 {
			o.MaxAttempts = x.MaxAttempts
		}
		if x.WriteTimeout > 0 {
			o.WriteTimeout = x.WriteTimeout
		}
		if x.Latency > 0 {
			o.Latency = x.Latency
		}
		if x.unary != nil {
			o.unary = x.unary
		}
	}
	if o.Root == "" {
		o.Root = DefaultRoot
	}
	if o.Database == "" {
		o.Database = firestore.DefaultDatabaseID
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 30
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 30 * time.Second
	}
	var copts []option.ClientOption
	if o.Latency > 0 || o.unary != nil || tracing && os.Getenv(emulatorHost) != "" {
		lo, err := emulatorConn(o.Latency, o.unary)
		if err != nil {
			return nil, fmt.Errorf("open firestore store: %w", err)
		}
		copts = append(copts, lo)
	}
	client, err := firestore.NewClientWithDatabase(ctx, project, o.Database, copts...)
	if err != nil {
		return nil, fmt.Errorf("open firestore store in %s: %w", project, err)
	}
	root := client.Doc(strings.Trim(o.Root, "/"))
	if root == nil {
		client.Close()
		return nil, fmt.Errorf("open firestore store: root %q is not a document path", o.Root)
	}
	s := &Store{client: client, root: root, maxAttempts: o.MaxAttempts, writeTimeout: o.WriteTimeout,
		refIDs: ttlcache.New[string, string](refIDsTTL), finals: ttlcache.New[string, finalDoc](finalTTL)}
	s.known.clone, s.known.size = cloneContainerDoc, containerDocSize
	s.knownNet.size = func(d networkDoc) int { return len(d.JSON) }
	return s, nil
}

// Close closes the client.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("close firestore store: %w", err)
	}
	return nil
}

// Stats returns the documents read and written by this store so far.
// A lookup of a missing document and a query that matches nothing each
// count one read, as Firestore bills them; deletes count as writes; reads
// of transaction attempts that were retried count, their writes do not.
func (s *Store) Stats() (reads, writes int64) {
	return s.reads.Load(), s.writes.Load()
}

// EventWrites returns how many of the writes stored or pruned event
// batches.
func (s *Store) EventWrites() int64 { return s.eventWrites.Load() }

// Collections under the root document.
const (
	colContainers = "containers" // under namespaces/{ns}
	colNamespaces = "namespaces"
	colImages     = "images"
	colRefs       = "refs"
	colFunctions  = "functions"
	colLogs       = "logs"
	colChunks     = "chunks"
)

func (s *Store) col(name string) *firestore.CollectionRef { return s.root.Collection(name) }

// containers is namespace ns's collection of containers.
func (s *Store) containers(ns string) *firestore.CollectionRef {
	return s.nsCol(ns, colContainers)
}

// containerRef is the document of the container named name in namespace
// ns: its existence is the name's reservation.
func (s *Store) containerRef(ns, name string) *firestore.DocumentRef {
	return s.containers(ns).Doc(docID(strings.TrimPrefix(name, "/")))
}

// docID turns any string into a valid document ID, keeping it readable:
// bytes other than ASCII letters, digits and "-._~:@+=," become %XX, as
// does a leading "_" (IDs matching __.*__ are reserved). The mapping is
// injective and keeps prefixes, so an ID prefix is a range of doc IDs.
func docID(s string) string {
	if s == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if safeByte(c) && (c != '_' || i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	out := b.String()
	if strings.Trim(out, ".") == "" { // "." and ".." are not IDs
		out = strings.ReplaceAll(out, ".", "%2E")
	}
	return out
}

func safeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~:@+=,", c) >= 0
}

// prefixEnd is past every doc ID that starts with an escaped prefix (they
// are ASCII).
const prefixEnd = "\uf8ff"

// newGen returns a random log generation for a new container.
func newGen() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isCode reports whether err carries gRPC status code c.
func isCode(err error, c codes.Code) bool {
	return status.Code(err) == c
}

// writeContext detaches a state change from the caller's cancellation and
// bounds it by the write timeout.
func (s *Store) writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.writeTimeout)
}

// txn is one attempt of a transaction; it counts what it reads and writes.
// A txn without tx records its writes in ops instead (for writeKnown),
// and cannot read.
type txn struct {
	s      *Store
	tx     *firestore.Transaction
	writes int64
	ops    []func(*firestore.WriteBatch)
}

// batch returns a WriteBatch: writes committed all or none in one Commit
// call. The API is deprecated for transactions, but a transaction begins
// with a round trip of its own (BeginTransaction, measured on the
// emulator's trace), which writes that read nothing do not need: every
// write of a known state (known), two calls instead of one.
func (s *Store) batch() *firestore.WriteBatch {
	return s.client.Batch() //nolint:staticcheck // see above
}

// errNoReads is a read attempted by a txn that only records writes.
var errNoReads = errors.New("read in a write-only change")

// runTx runs fn in a transaction (retried on contention) and counts the
// writes of the attempt that committed.
func (s *Store) runTx(ctx context.Context, fn func(t *txn) error) error {
	return s.runTxCommit(ctx, nil, fn)
}

// runTxCommit is runTx that also fills resp (if not nil) with the commit's
// results.
func (s *Store) runTxCommit(ctx context.Context, resp *firestore.CommitResponse, fn func(t *txn) error) error {
	ctx, cancel := s.writeContext(ctx)
	defer cancel()
	var committed int64
	opts := []firestore.TransactionOption{firestore.MaxAttempts(s.maxAttempts)}
	if resp != nil {
		opts = append(opts, firestore.WithCommitResponseTo(resp))
	}
	err := s.client.RunTransaction(ctx, func(_ context.Context, tx *firestore.Transaction) error {
		t := &txn{s: s, tx: tx}
		err := fn(t)
		committed = t.writes
		return err
	}, opts...)
	if err == nil {
		s.countWrites(committed)
	}
	return err
}

// updateTime returns the update time the commit in resp gave to its
// write number n (counted from 0), or zero.
func updateTime(resp *firestore.CommitResponse, n int64) time.Time {
	wrs, err := resp.WriteResults()
	if err != nil || n < 0 || int64(len(wrs)) <= n || wrs[n] == nil {
		return time.Time{}
	}
	return wrs[n].UpdateTime
}

// lock takes the stripe of record key and returns its unlock. A caller
// holds at most one stripe at a time.
func (s *Store) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Record keys for lock.
func containerKey(id string) string { return "c/" + id }
func functionKey(key string) string { return "f/" + key }

const imagesKey = "images" // image writes touch refs shared among images

// getAll reads docs in the transaction; a missing doc is a snapshot that
// does not exist.
func (t *txn) getAll(refs ...*firestore.DocumentRef) ([]*firestore.DocumentSnapshot, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if t.tx == nil {
		return nil, errNoReads
	}
	t.s.countReads(int64(len(refs)))
	snaps, err := t.tx.GetAll(refs)
	if err != nil {
		return nil, fmt.Errorf("read %d documents: %w", len(refs), err)
	}
	return snaps, nil
}

func (t *txn) get(ref *firestore.DocumentRef) (*firestore.DocumentSnapshot, error) {
	snaps, err := t.getAll(ref)
	if err != nil {
		return nil, err
	}
	return snaps[0], nil
}

func (t *txn) create(ref *firestore.DocumentRef, v any) error {
	t.writes++
	if t.tx == nil {
		t.ops = append(t.ops, func(b *firestore.WriteBatch) { b.Create(ref, v) })
		return nil
	}
	return t.tx.Create(ref, v)
}

func (t *txn) set(ref *firestore.DocumentRef, v any) error {
	t.writes++
	if t.tx == nil {
		t.ops = append(t.ops, func(b *firestore.WriteBatch) { b.Set(ref, v) })
		return nil
	}
	return t.tx.Set(ref, v)
}

func (t *txn) update(ref *firestore.DocumentRef, u []firestore.Update) error {
	t.writes++
	if t.tx == nil {
		t.ops = append(t.ops, func(b *firestore.WriteBatch) { b.Update(ref, u) })
		return nil
	}
	return t.tx.Update(ref, u)
}

func (t *txn) delete(ref *firestore.DocumentRef) error {
	t.writes++
	if t.tx == nil {
		t.ops = append(t.ops, func(b *firestore.WriteBatch) { b.Delete(ref) })
		return nil
	}
	return t.tx.Delete(ref)
}

// getDoc reads one document outside a transaction; a missing doc is a
// snapshot that does not exist.
func (s *Store) getDoc(ctx context.Context, ref *firestore.DocumentRef) (*firestore.DocumentSnapshot, error) {
	s.countReads(1)
	snap, err := ref.Get(ctx)
	if err != nil && !isCode(err, codes.NotFound) {
		return nil, fmt.Errorf("read %s: %w", ref.ID, err)
	}
	return snap, nil
}

// getDocs reads docs outside a transaction in one call, at one read
// time; a missing doc is a snapshot that does not exist.
func (s *Store) getDocs(ctx context.Context, refs ...*firestore.DocumentRef) ([]*firestore.DocumentSnapshot, error) {
	s.countReads(int64(len(refs)))
	snaps, err := s.client.GetAll(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("read %d documents: %w", len(refs), err)
	}
	return snaps, nil
}

// query runs q in the transaction and returns every document it finds,
// counting reads as Store.query does.
func (t *txn) query(q firestore.Query) ([]*firestore.DocumentSnapshot, error) {
	if t.tx == nil {
		return nil, errNoReads
	}
	snaps, err := t.tx.Documents(q).GetAll()
	t.s.countReads(max(int64(len(snaps)), 1))
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return snaps, nil
}

// query runs q to the end (or until stop returns true), counting reads.
func (s *Store) query(ctx context.Context, q firestore.Query, each func(*firestore.DocumentSnapshot) (stop bool, err error)) error {
	it := q.Documents(ctx)
	defer it.Stop()
	n := int64(0)
	defer func() {
		s.countReads(max(n, 1)) // an empty result bills one read
	}()
	for {
		snap, err := it.Next()
		if err != nil {
			if errors.Is(err, iterator.Done) {
				return nil
			}
			return fmt.Errorf("query: %w", err)
		}
		n++
		stop, err := each(snap)
		if err != nil || stop {
			return err
		}
	}
}
