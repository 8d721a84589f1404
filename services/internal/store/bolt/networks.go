package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/netplane"
	bbolt "go.etcd.io/bbolt"
)

var _ netplane.Store = (*Store)(nil)

// Networks are keyed "ns\x00id" in bNetworks; their names and subnets are
// reserved as "ns\x00name" and "ns\x00subnet".
func nsKey(ns, k string) []byte { return []byte(ns + "\x00" + k) }

// CreateNetwork stores n and reserves its name and subnet.
func (s *Store) CreateNetwork(ctx context.Context, n *netplane.Network) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		nets, names, subnets := tx.Bucket(bNetworks), tx.Bucket(bNetNames), tx.Bucket(bSubnets)
		if nets.Get(nsKey(n.Namespace, n.ID)) != nil {
			return fmt.Errorf("network id %s: %w", n.ID, engine.ErrConflict)
		}
		// A namesake (netplane.Network.NameShared) reserves no name.
		if !n.NameShared && names.Get(nsKey(n.Namespace, n.Name)) != nil {
			return fmt.Errorf("network name %q: %w", n.Name, engine.ErrConflict)
		}
		if n.Subnet != "" {
			if subnets.Get(nsKey(n.Namespace, n.Subnet)) != nil {
				return fmt.Errorf("network subnet %s: %w", n.Subnet, netplane.ErrSubnetTaken)
			}
			if err := subnets.Put(nsKey(n.Namespace, n.Subnet), []byte(n.ID)); err != nil {
				return err
			}
		}
		if !n.NameShared {
			if err := names.Put(nsKey(n.Namespace, n.Name), []byte(n.ID)); err != nil {
				return err
			}
		}
		return putJSON(nets, nsKey(n.Namespace, n.ID), n)
	})
}

// getNetwork resolves ref (ID, name, ID prefix) inside a transaction.
func getNetwork(tx *bbolt.Tx, ns, ref string) (*netplane.Network, error) {
	nets := tx.Bucket(bNetworks)
	if ref == "" {
		return nil, engine.ErrNotFound
	}
	if n, err := getJSON[netplane.Network](nets, nsKey(ns, ref)); err == nil {
		return n, nil
	}
	if id := tx.Bucket(bNetNames).Get(nsKey(ns, ref)); id != nil {
		return getJSON[netplane.Network](nets, nsKey(ns, string(id)))
	}
	var found *netplane.Network
	prefix := nsKey(ns, ref)
	cur := nets.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if found != nil {
			return nil, engine.ErrAmbiguous
		}
		var n netplane.Network
		if err := json.Unmarshal(v, &n); err != nil {
			return nil, fmt.Errorf("decode network %q: %w", k, err)
		}
		found = &n
	}
	if found == nil {
		return nil, engine.ErrNotFound
	}
	return found, nil
}

// GetNetwork finds a network by ID, name or unique ID prefix.
func (s *Store) GetNetwork(ctx context.Context, ns, ref string) (*netplane.Network, error) {
	var n *netplane.Network
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = getNetwork(tx, ns, ref)
		return err
	})
	return n, err
}

// ListNetworks returns the namespace's networks.
func (s *Store) ListNetworks(ctx context.Context, ns string) ([]*netplane.Network, error) {
	var out []*netplane.Network
	prefix := nsKey(ns, "")
	err := s.db.View(func(tx *bbolt.Tx) error {
		cur := tx.Bucket(bNetworks).Cursor()
		for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
			var n netplane.Network
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("decode network %q: %w", k, err)
			}
			out = append(out, &n)
		}
		return nil
	})
	return out, err
}

// UpdateNetwork is a read-modify-write of one network.
func (s *Store) UpdateNetwork(ctx context.Context, ns, id string, fn func(*netplane.Network) error) (*netplane.Network, error) {
	var out *netplane.Network
	err := s.db.Update(func(tx *bbolt.Tx) error {
		nets := tx.Bucket(bNetworks)
		n, err := getJSON[netplane.Network](nets, nsKey(ns, id))
		if err != nil {
			return err
		}
		name, subnet, shared := n.Name, n.Subnet, n.NameShared
		if err := fn(n); err != nil {
			return err
		}
		// Name and subnet are reserved at create and never change.
		n.ID, n.Namespace, n.Name, n.Subnet, n.NameShared = id, ns, name, subnet, shared
		out = n
		return putJSON(nets, nsKey(ns, id), n)
	})
	return out, err
}

// DeleteNetwork removes a network and frees its name and subnet.
func (s *Store) DeleteNetwork(ctx context.Context, ns, id string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		nets := tx.Bucket(bNetworks)
		n, err := getJSON[netplane.Network](nets, nsKey(ns, id))
		if err != nil {
			return err
		}
		if !n.NameShared {
			if err := tx.Bucket(bNetNames).Delete(nsKey(ns, n.Name)); err != nil {
				return err
			}
		}
		if n.Subnet != "" {
			if err := tx.Bucket(bSubnets).Delete(nsKey(ns, n.Subnet)); err != nil {
				return err
			}
		}
		return nets.Delete(nsKey(ns, id))
	})
}
