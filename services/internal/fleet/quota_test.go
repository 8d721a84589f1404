package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockerless/sockerless/agent/proto"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
	"github.com/sockerless/sockerless/services/internal/store/bolt"
)

// quotaFunctions refuses the first refusals Create calls over quota.
type quotaFunctions struct {
	refusals int64
	calls    atomic.Int64
}

func (f *quotaFunctions) Create(context.Context, string, string) (string, error) {
	if f.calls.Add(1) <= f.refusals {
		return "", fmt.Errorf("create: %w: rpc error: code = ResourceExhausted desc = Quota exceeded", engine.ErrQuota)
	}
	return "http://fn", nil
}
func (f *quotaFunctions) Invoke(ctx context.Context, _ string, _ proto.Invocation) error {
	<-ctx.Done()
	return ctx.Err()
}
func (f *quotaFunctions) Delete(context.Context, string) error { return nil }

func quotaFleet(t *testing.T, fns engine.Functions, retry time.Duration) (*fleet.Fleet, *engine.Image) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fl := fleet.New(fleet.Config{Store: st, Images: fakeImages{}, Functions: fns, QuotaRetry: retry})
	t.Cleanup(func() { fl.Close() })
	return fl, &engine.Image{ID: "sha256:" + strings.Repeat("ef", 32)}
}

func TestQuotaRefusalsAreRetried(t *testing.T) {
	fns := &quotaFunctions{refusals: 3}
	fl, img := quotaFleet(t, fns, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := fl.Acquire(ctx, img, engine.Shape{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if l.URL() != "http://fn" || fns.calls.Load() != 4 {
		t.Fatalf("url %s after %d calls, want the 4th to succeed", l.URL(), fns.calls.Load())
	}
}

func TestPersistentQuotaRefusalIsReported(t *testing.T) {
	fns := &quotaFunctions{refusals: 1 << 30}
	fl, img := quotaFleet(t, fns, time.Second)
	_, err := fl.Acquire(context.Background(), img, engine.Shape{})
	if err == nil || !strings.Contains(err.Error(), "still over the cloud's API quota") || !strings.Contains(err.Error(), "Quota exceeded") {
		t.Fatalf("err = %v, want one that says the quota refused it", err)
	}
	if fns.calls.Load() < 2 {
		t.Fatalf("%d calls: want retries", fns.calls.Load())
	}
	var e *engine.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %T is no *engine.Error", err)
	}
}
