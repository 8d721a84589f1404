package engine

import (
	"context"
	"time"
)

// A start of a container on a new instance opens the instance's
// invocation while it stores its claim of the container (Start): on a
// shared store the claim is a round trip, hidden in the instance's boot.
// The instance's agent may then call back before the claim is decided,
// and the claim may lose (the container was started or removed meanwhile,
// or the store failed), leaving an instance that must end.

// lostClaimTTL is how long the secret of a lost claim's instance is
// remembered: its agent calls back within its boot, or never.
const lostClaimTTL = time.Minute

// claimPending records that this process is storing a start claim for the
// instance whose secret hashes to secretHash: its agent calling back
// waits for the claim's outcome (awaitClaim). The channel returned closes
// once claimDecided is called.
func (e *Engine) claimPending(secretHash string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	decided := make(chan struct{})
	e.claims[secretHash] = decided
	return decided
}

// claimDecided ends the pending claim of container id for the instance
// whose secret hashes to secretHash, opened as inv. A claim that was
// stored makes inv the container's invocation; one that lost cancels inv,
// and its agent is told its instance is ended when it calls back.
func (e *Engine) claimDecided(id, secretHash string, inv *invocation, stored bool) {
	if stored {
		e.hold(id, inv)
	} else {
		// Marked before waiters (awaitClaim, the invocation's end) wake.
		e.lostClaims.PutIf(e.lostClaims.Gen(), secretHash, struct{}{})
		inv.lost.Store(true)
		inv.cancel()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	close(e.claims[secretHash])
	delete(e.claims, secretHash)
}

// awaitClaim waits, bounded by ctx, for this process's pending claim for
// the instance whose secret hashes to secretHash, if there is one, so its
// agent is judged on the claim's outcome; the agent of a claim that lost
// gets ErrInstanceEnded.
func (e *Engine) awaitClaim(ctx context.Context, secretHash string) error {
	e.mu.Lock()
	pending := e.claims[secretHash]
	e.mu.Unlock()
	if pending != nil {
		select {
		case <-pending:
		case <-ctx.Done():
			return &Error{Kind: KindUnavailable, Message: "the start of its container is being stored", Err: ctx.Err()}
		}
	}
	if _, lost := e.lostClaims.Get(secretHash); lost {
		return ErrInstanceEnded
	}
	return nil
}
