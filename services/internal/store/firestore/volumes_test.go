package firestore

import (
	"testing"

	"github.com/sockerless/sockerless/services/internal/auth"
	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/store/storetest"
	"github.com/sockerless/sockerless/services/internal/volumes"
	"github.com/sockerless/sockerless/services/internal/volumes/volumetest"
)

func TestVolumeConformance(t *testing.T) {
	volumetest.Run(t, func(t *testing.T) volumes.Store {
		s, _ := openFresh(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestTeamsConformance(t *testing.T) {
	storetest.RunTeams(t, func(t *testing.T) auth.Store {
		s, _ := openFresh(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestUsageConformance(t *testing.T) {
	storetest.RunUsage(t, func(t *testing.T) engine.UsageLedger {
		s, _ := openFresh(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
