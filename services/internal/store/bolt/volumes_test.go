package bolt

import (
	"path/filepath"
	"testing"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
	"github.com/sockerless/sockerless/services/internal/volumes"
	"github.com/sockerless/sockerless/services/internal/volumes/volumetest"
)

func TestVolumeConformance(t *testing.T) {
	volumetest.Run(t, func(t *testing.T) volumes.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestTeamsConformance(t *testing.T) {
	storetest.RunTeams(t, func(t *testing.T) auth.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestUsageConformance(t *testing.T) {
	storetest.RunUsage(t, func(t *testing.T) engine.UsageLedger {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"), Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
