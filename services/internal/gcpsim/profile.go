package gcpsim

import (
	"fmt"
	"time"
)

// Profile is how long Google takes and what it allows: the delays of the
// long-running operations, an instance's cold start, and the API quotas.
// The figures of the google profile and their sources are in doc.go.
type Profile struct {
	// Name is "fast" or "google".
	Name string
	// CreateFunction is a Cloud Functions v2 CreateFunction or
	// UpdateFunction: the source build and the first revision.
	CreateFunction time.Duration
	// DeleteFunction is DeleteFunction.
	DeleteFunction time.Duration
	// Revision is a Cloud Run v2 CreateService, UpdateService or
	// DeleteService: deploying a revision.
	Revision time.Duration
	// ColdStart is the start of a new instance before the image's
	// entrypoint runs, beside the image pull.
	ColdStart time.Duration
	// PullBytesPerSecond is how fast a new instance fetches its image
	// (compressed bytes); 0 adds no pull time.
	PullBytesPerSecond int64
	// FunctionsPerRegion bounds the functions of a region; 0: no bound.
	FunctionsPerRegion int
	// WritesPerMinute bounds the write calls (create, update, delete) per
	// minute and region of each API; 0: no bound.
	WritesPerMinute int
	// Minute is the quota window: a minute, scaled.
	Minute time.Duration
}

// Profile names.
const (
	ProfileFast   = "fast"
	ProfileGoogle = "google"
)

// FastProfile is the profile of tests: every operation takes delay, no
// cold start or pull time, no quotas.
func FastProfile(delay time.Duration) Profile {
	return Profile{Name: ProfileFast, CreateFunction: delay, DeleteFunction: delay, Revision: delay, Minute: time.Minute}
}

// GoogleProfile is Google's clock, as measured and documented (doc.go).
func GoogleProfile() Profile {
	return Profile{
		Name:               ProfileGoogle,
		CreateFunction:     90 * time.Second,
		DeleteFunction:     30 * time.Second,
		Revision:           15 * time.Second,
		ColdStart:          1500 * time.Millisecond,
		PullBytesPerSecond: 50 << 20,
		FunctionsPerRegion: 1000,
		WritesPerMinute:    60,
		Minute:             time.Minute,
	}
}

// ProfileNamed returns the profile called name ("" is fast); delay is the
// fast profile's operation delay.
func ProfileNamed(name string, delay time.Duration) (Profile, error) {
	switch name {
	case "", ProfileFast:
		return FastProfile(delay), nil
	case ProfileGoogle:
		return GoogleProfile(), nil
	}
	return Profile{}, fmt.Errorf("unknown gcpsim profile %q: want fast or google", name)
}

// Scaled returns p with every duration multiplied by f (the pull rate
// divided by it): f = 0.02 runs Google's clock fifty times as fast, so a
// test sees the same order of events in seconds. f ≤ 0 is 1.
func (p Profile) Scaled(f float64) Profile {
	if f <= 0 || f == 1 {
		return p
	}
	d := func(v time.Duration) time.Duration { return time.Duration(float64(v) * f) }
	p.CreateFunction, p.DeleteFunction, p.Revision = d(p.CreateFunction), d(p.DeleteFunction), d(p.Revision)
	p.ColdStart, p.Minute = d(p.ColdStart), d(p.Minute)
	if p.PullBytesPerSecond > 0 {
		p.PullBytesPerSecond = int64(float64(p.PullBytesPerSecond) / f)
	}
	return p
}
