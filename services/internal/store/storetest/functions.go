package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
)

func functionCases() []testCase {
	return []testCase{
		{"concurrent claims of one key: exactly one creates", testFunctionClaim},
		{"update returning nil stores nothing", testFunctionNil},
		{"failing function update writes nothing", testFunctionAbort},
		{"functions are listed and found by key", testFunctionList},
		{"pool claims: each pooled stub goes to exactly one claimer", testPoolClaim},
	}
}

// claim creates the function at key named name if none is there, and
// returns what is stored.
func claim(t *testing.T, s engine.Store, key, name string) (*engine.Function, error) {
	return s.UpdateFunction(t.Context(), key, func(f *engine.Function) (*engine.Function, error) {
		if f != nil {
			return nil, nil
		}
		return &engine.Function{Name: name, Status: engine.FunctionCreating}, nil
	})
}

func testFunctionClaim(t *testing.T, s engine.Store) {
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var creators, seen []string
	for i := range n {
		wg.Go(func() {
			mine := fmt.Sprintf("fn-%d", i)
			f, err := claim(t, s, "img-1", mine)
			if err != nil || f == nil {
				t.Errorf("claim %s: %+v, %v", mine, f, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, f.Name)
			if f.Name == mine {
				creators = append(creators, mine)
			}
		})
	}
	wg.Wait()
	if len(creators) != 1 {
		t.Fatalf("creators %v, want exactly one", creators)
	}
	for _, name := range seen {
		if name != creators[0] {
			t.Fatalf("a claimer saw %s, not the creator %s", name, creators[0])
		}
	}
	f, err := s.GetFunction(t.Context(), "img-1")
	if err != nil || f.Key != "img-1" || f.Name != creators[0] || f.Status != engine.FunctionCreating {
		t.Fatalf("stored function = %+v, %v", f, err)
	}
}

func testFunctionNil(t *testing.T, s engine.Store) {
	f, err := s.UpdateFunction(t.Context(), "k", func(f *engine.Function) (*engine.Function, error) {
		if f != nil {
			t.Errorf("fn got %+v for an absent key", f)
		}
		return nil, nil
	})
	if err != nil || f != nil {
		t.Fatalf("update = %+v, %v; want nil, nil", f, err)
	}
	_, err = s.GetFunction(t.Context(), "k")
	wantErr(t, err, engine.ErrNotFound)
	if _, err := claim(t, s, "k", "first"); err != nil {
		t.Fatal(err)
	}
	f, err = s.UpdateFunction(t.Context(), "k", func(*engine.Function) (*engine.Function, error) { return nil, nil })
	if err != nil || f == nil || f.Name != "first" {
		t.Fatalf("nil update of a present key = %+v, %v; want it unchanged", f, err)
	}
}

func testFunctionAbort(t *testing.T, s engine.Store) {
	if _, err := claim(t, s, "k", "first"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, err := s.UpdateFunction(t.Context(), "k", func(f *engine.Function) (*engine.Function, error) {
		f.Status = engine.FunctionFailed
		return f, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fn's error", err)
	}
	if f, err := s.GetFunction(t.Context(), "k"); err != nil || f.Status != engine.FunctionCreating {
		t.Fatalf("after an aborted update: %+v, %v", f, err)
	}
	_, err = s.UpdateFunction(t.Context(), "new", func(*engine.Function) (*engine.Function, error) {
		return &engine.Function{Name: "x"}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fn's error", err)
	}
	_, err = s.GetFunction(t.Context(), "new")
	wantErr(t, err, engine.ErrNotFound)
}

func testFunctionList(t *testing.T, s engine.Store) {
	if fs, err := s.ListFunctions(t.Context()); err != nil || len(fs) != 0 {
		t.Fatalf("empty store lists %v, %v", fs, err)
	}
	for _, k := range []string{"k1", "k2"} {
		if _, err := claim(t, s, k, "fn-"+k); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.UpdateFunction(t.Context(), "k1", func(f *engine.Function) (*engine.Function, error) {
		f.Status, f.URL = engine.FunctionReady, "http://fn-k1"
		return f, nil
	})
	if err != nil || f.URL != "http://fn-k1" {
		t.Fatalf("update = %+v, %v", f, err)
	}
	fs, err := s.ListFunctions(t.Context())
	if err != nil || len(fs) != 2 {
		t.Fatalf("list = %v, %v", fs, err)
	}
	got := map[string]*engine.Function{}
	for _, f := range fs {
		got[f.Key] = f
	}
	if got["k1"] == nil || got["k1"].Status != engine.FunctionReady || got["k2"] == nil || got["k2"].Name != "fn-k2" {
		t.Fatalf("listed %+v", got)
	}
}

// testPoolClaim races claimers (as two control planes on one store would)
// over a few pooled stubs with fleet.ClaimPooled, the pool's claim
// transaction: every stub is claimed once, by one claimer, and claimers
// that find none left get none.
func testPoolClaim(t *testing.T, s engine.Store) {
	const stubs, claimers = 4, 10
	for i := range stubs {
		key := fmt.Sprintf("pool-stub-%d@conf", i)
		_, err := s.UpdateFunction(t.Context(), key, func(*engine.Function) (*engine.Function, error) {
			return &engine.Function{Key: key, Name: fmt.Sprintf("stub-%d", i), Status: fleet.PoolReady, Created: time.Now().UTC()}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string][]string{} // stub name → claimers
	empty := 0
	for i := range claimers {
		wg.Go(func() {
			f, err := fleet.ClaimPooled(t.Context(), s, "conf", fmt.Sprintf("img-%d@conf", i))
			if err != nil {
				t.Errorf("claimer %d: %v", i, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if f == nil {
				empty++
				return
			}
			got[f.Name] = append(got[f.Name], fmt.Sprint(i))
		})
	}
	wg.Wait()
	if len(got) != stubs || empty != claimers-stubs {
		t.Fatalf("claims %v, %d empty-handed: want each of %d stubs claimed and %d empty", got, empty, stubs, claimers-stubs)
	}
	for name, by := range got {
		if len(by) != 1 {
			t.Errorf("stub %s claimed by %v", name, by)
		}
	}
	fns, err := s.ListFunctions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		if strings.HasPrefix(f.Key, "pool-stub-") && f.Status != fleet.PoolClaimed {
			t.Errorf("%s is %q after the race, want claimed", f.Key, f.Status)
		}
	}
}
