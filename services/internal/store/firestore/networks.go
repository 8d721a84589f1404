package firestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
)

var _ netplane.Store = (*Store)(nil)

// Collections of a namespace's networks (see the package doc).
const (
	colNetworks = "networks"
	colNetNames = "netnames"
	colSubnets  = "subnets"
)

// networkDoc is a network document: the network as JSON.
type networkDoc struct {
	JSON string `firestore:"json"`
}

// nameDoc reserves a network's name or subnet in a namespace.
type nameDoc struct {
	ID string `firestore:"id"`
}

func (s *Store) nsCol(ns, name string) *firestore.CollectionRef {
	return s.col(colNamespaces).Doc(docID(ns)).Collection(name)
}

func (s *Store) networkRef(ns, id string) *firestore.DocumentRef {
	return s.nsCol(ns, colNetworks).Doc(docID(id))
}

func networkKey(ns, id string) string { return "n/" + ns + "/" + id }

func readNetwork(snap *firestore.DocumentSnapshot) (*netplane.Network, error) {
	_, n, err := readNetworkDoc(snap)
	return n, err
}

func readNetworkDoc(snap *firestore.DocumentSnapshot) (*networkDoc, *netplane.Network, error) {
	if snap == nil || !snap.Exists() {
		return nil, nil, engine.ErrNotFound
	}
	var d networkDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, nil, fmt.Errorf("decode network %s: %w", snap.Ref.ID, err)
	}
	n, err := decodeNetwork(snap.Ref.ID, &d)
	return &d, n, err
}

func decodeNetwork(id string, d *networkDoc) (*netplane.Network, error) {
	var n netplane.Network
	if err := json.Unmarshal([]byte(d.JSON), &n); err != nil {
		return nil, fmt.Errorf("decode network %s: %w", id, err)
	}
	return &n, nil
}

// readKnownNetwork is readNetwork that also keeps the state read as
// known (see known).
func (s *Store) readKnownNetwork(snap *firestore.DocumentSnapshot) (*netplane.Network, error) {
	d, n, err := readNetworkDoc(snap)
	if err == nil {
		s.knownNet.put(networkKey(n.Namespace, n.ID), d, snap.UpdateTime)
	}
	return n, err
}

func encodeNetwork(n *netplane.Network) (networkDoc, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return networkDoc{}, fmt.Errorf("encode network %s: %w", n.ID, err)
	}
	return networkDoc{JSON: string(b)}, nil
}

// CreateNetwork stores n and reserves its name and subnet: creates with
// the precondition that each document does not exist, in one transaction.
func (s *Store) CreateNetwork(ctx context.Context, n *netplane.Network) error {
	doc, err := encodeNetwork(n)
	if err != nil {
		return err
	}
	err = s.runTx(ctx, func(t *txn) error {
		// The network's document, then the reservations: its name (a
		// namesake, netplane.Network.NameShared, reserves none) and subnet.
		refs := []*firestore.DocumentRef{s.networkRef(n.Namespace, n.ID)}
		taken := []error{fmt.Errorf("network id %s: %w", n.ID, engine.ErrConflict)}
		if !n.NameShared {
			refs = append(refs, s.nsCol(n.Namespace, colNetNames).Doc(docID(n.Name)))
			taken = append(taken, fmt.Errorf("network name %q: %w", n.Name, engine.ErrConflict))
		}
		if n.Subnet != "" {
			refs = append(refs, s.nsCol(n.Namespace, colSubnets).Doc(docID(n.Subnet)))
			taken = append(taken, fmt.Errorf("network subnet %s: %w", n.Subnet, netplane.ErrSubnetTaken))
		}
		snaps, err := t.getAll(refs...)
		if err != nil {
			return err
		}
		for i, snap := range snaps {
			if snap.Exists() {
				return fnError{taken[i]}
			}
		}
		if err := t.create(refs[0], doc); err != nil {
			return err
		}
		for _, r := range refs[1:] {
			if err := t.create(r, nameDoc{ID: n.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if isCode(err, codes.AlreadyExists) {
		// Lost a race with a create that committed between our reads and
		// our writes: which key collided is read again.
		return s.CreateNetwork(ctx, n)
	}
	return unwrapFn(err, "create network %s", n.Name)
}

// GetNetwork finds a network by ID, name or unique ID prefix.
func (s *Store) GetNetwork(ctx context.Context, ns, ref string) (*netplane.Network, error) {
	if ref == "" {
		return nil, fmt.Errorf("network %q: %w", ref, engine.ErrNotFound)
	}
	// Docker looks up the ID first, then the name; IDs are hex, so a ref
	// that is not (bridge, a user's name) goes to the names first and
	// saves the read of a document that cannot exist.
	byName := func() (*netplane.Network, bool, error) {
		nsnap, err := s.getDoc(ctx, s.nsCol(ns, colNetNames).Doc(docID(ref)))
		if err != nil || !nsnap.Exists() {
			return nil, false, err
		}
		var nd nameDoc
		if err := nsnap.DataTo(&nd); err != nil {
			return nil, false, fmt.Errorf("decode network name %q: %w", ref, err)
		}
		snap, err := s.getDoc(ctx, s.networkRef(ns, nd.ID))
		if err != nil {
			return nil, false, err
		}
		n, err := s.readKnownNetwork(snap)
		return n, err == nil, err
	}
	hexRef := strings.Trim(ref, "0123456789abcdef") == ""
	if !hexRef {
		if n, ok, err := byName(); err != nil || ok {
			if err != nil {
				return nil, fmt.Errorf("get network %s: %w", ref, err)
			}
			return n, nil
		}
	}
	snap, err := s.getDoc(ctx, s.networkRef(ns, ref))
	if err != nil {
		return nil, fmt.Errorf("get network %s: %w", ref, err)
	}
	if snap.Exists() {
		return s.readKnownNetwork(snap)
	}
	if hexRef {
		if n, ok, err := byName(); err != nil || ok {
			if err != nil {
				return nil, fmt.Errorf("get network %s: %w", ref, err)
			}
			return n, nil
		}
	}
	col := s.nsCol(ns, colNetworks)
	prefix := docID(ref)
	q := col.Where(firestore.DocumentID, ">=", col.Doc(prefix)).Where(firestore.DocumentID, "<", col.Doc(prefix+prefixEnd)).Limit(2)
	var found []*netplane.Network
	err = s.query(ctx, q, func(snap *firestore.DocumentSnapshot) (bool, error) {
		n, err := readNetwork(snap)
		if err != nil {
			return true, err
		}
		found = append(found, n)
		return false, nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get network %s: %w", ref, err)
	case len(found) == 0:
		return nil, fmt.Errorf("network %q: %w", ref, engine.ErrNotFound)
	case len(found) > 1:
		return nil, fmt.Errorf("network prefix %q: %w", ref, engine.ErrAmbiguous)
	}
	return found[0], nil
}

// ListNetworks returns the namespace's networks: one query.
func (s *Store) ListNetworks(ctx context.Context, ns string) ([]*netplane.Network, error) {
	var out []*netplane.Network
	err := s.query(ctx, s.nsCol(ns, colNetworks).Query, func(snap *firestore.DocumentSnapshot) (bool, error) {
		n, err := s.readKnownNetwork(snap)
		if err != nil {
			return true, err
		}
		out = append(out, n)
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list networks of %q: %w", ns, err)
	}
	return out, nil
}

// txNetwork reads network id in transaction t.
func (s *Store) txNetwork(t *txn, ns, id string) (*firestore.DocumentRef, *netplane.Network, error) {
	ref := s.networkRef(ns, id)
	snap, err := t.get(ref)
	if err != nil {
		return nil, nil, err
	}
	n, err := readNetwork(snap)
	return ref, n, err
}

// UpdateNetwork is a read-modify-write of one network in a transaction.
func (s *Store) UpdateNetwork(ctx context.Context, ns, id string, fn func(*netplane.Network) error) (*netplane.Network, error) {
	key := networkKey(ns, id)
	defer s.lock(key)()
	if n, ok, err := s.updateKnownNetwork(ctx, ns, id, fn); ok || err != nil {
		return n, err
	}
	var out *netplane.Network
	var resp firestore.CommitResponse
	var written *networkDoc
	var writeN int64
	err := s.runTxCommit(ctx, &resp, func(t *txn) error {
		written = nil
		ref := s.networkRef(ns, id)
		snap, err := t.get(ref)
		if err != nil {
			return err
		}
		n, err := s.readKnownNetwork(snap)
		if err != nil {
			return err
		}
		before, _ := encodeNetwork(n)
		name, subnet, shared := n.Name, n.Subnet, n.NameShared
		if err := fn(n); err != nil {
			return fnError{err}
		}
		n.ID, n.Namespace, n.Name, n.Subnet, n.NameShared = id, ns, name, subnet, shared
		doc, err := encodeNetwork(n)
		if err != nil {
			return err
		}
		out = n
		if doc == before {
			return nil // nothing changed: no write
		}
		written, writeN = &doc, t.writes
		return t.set(ref, doc)
	})
	if err != nil {
		return nil, unwrapFn(err, "update network %s", id)
	}
	if written != nil {
		s.knownNet.put(key, written, updateTime(&resp, writeN))
	}
	return out, nil
}

// updateKnownNetwork is UpdateNetwork without a read, on the state of the
// network this process knows (as updateKnown for containers): ok reports
// that it is done.
func (s *Store) updateKnownNetwork(ctx context.Context, ns, id string, fn func(*netplane.Network) error) (*netplane.Network, bool, error) {
	key := networkKey(ns, id)
	d, at, ok := s.knownNet.get(key)
	if !ok {
		return nil, false, nil
	}
	n, err := decodeNetwork(id, &d)
	if err != nil || n.Namespace != ns || n.ID != id {
		return nil, false, nil
	}
	name, subnet := n.Name, n.Subnet
	if fn(n) != nil {
		return nil, false, nil
	}
	n.ID, n.Namespace, n.Name, n.Subnet = id, ns, name, subnet
	doc, err := encodeNetwork(n)
	if err != nil || doc == d {
		return nil, false, nil
	}
	wctx, cancel := s.writeContext(ctx)
	defer cancel()
	wr, err := s.networkRef(ns, id).Update(wctx, []firestore.Update{{Path: "json", Value: doc.JSON}}, firestore.LastUpdateTime(at))
	switch {
	case err == nil:
		s.countWrites(1)
		s.knownNet.put(key, &doc, wr.UpdateTime)
		return n, true, nil
	case stale(err):
		s.knownNet.drop(key)
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("update network %s: %w", id, err)
}

// DeleteNetwork removes a network and its name and subnet reservations.
func (s *Store) DeleteNetwork(ctx context.Context, ns, id string) error {
	defer s.lock(networkKey(ns, id))()
	err := s.runTx(ctx, func(t *txn) error {
		ref, n, err := s.txNetwork(t, ns, id)
		if err != nil {
			return err
		}
		if err := t.delete(ref); err != nil {
			return err
		}
		if !n.NameShared {
			if err := t.delete(s.nsCol(ns, colNetNames).Doc(docID(n.Name))); err != nil {
				return err
			}
		}
		if n.Subnet != "" {
			return t.delete(s.nsCol(ns, colSubnets).Doc(docID(n.Subnet)))
		}
		return nil
	})
	s.knownNet.drop(networkKey(ns, id))
	if errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("delete network %s: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete network %s: %w", id, err)
	}
	return nil
}
