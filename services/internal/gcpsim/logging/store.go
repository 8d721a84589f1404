// Package logging is gcpsim's stand-in for Cloud Logging: it keeps the
// stdout/stderr lines of function instances in memory as entries of
// resource.type="cloud_run_revision", and serves them through the Cloud
// Logging v2 API (ListLogEntries with a subset of the filter language,
// WriteLogEntries) over gRPC.
//
// Files: store.go (entries in memory), filter.go (the filter language),
// server.go (the gRPC server).
package logging

import (
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// ResourceType is the monitored resource type of instance log entries.
const ResourceType = "cloud_run_revision"

// Entry is one log entry, as Cloud Logging models it.
type Entry struct {
	// InsertID is unique per entry and increases with insertion.
	InsertID string    `json:"insertId"`
	Time     time.Time `json:"timestamp"`
	// LogName is "projects/P/logs/ID" (the ID URL-escaped).
	LogName string `json:"logName"`
	// ResourceType and Resource are the monitored resource and its labels.
	ResourceType string            `json:"resourceType"`
	Resource     map[string]string `json:"resource,omitempty"`
	// Labels are the entry's own labels (instanceId for instance output).
	Labels map[string]string `json:"labels,omitempty"`
	// Severity is a LogSeverity name: DEFAULT, INFO, ERROR, …
	Severity string `json:"severity"`
	Text     string `json:"textPayload"`
	// JSON is a structured payload (jsonPayload), kept as the client sent
	// it; an entry has Text or JSON.
	JSON *structpb.Struct `json:"jsonPayload,omitempty"`
}

// InstanceEntry is a line an instance wrote on stream ("stdout" or
// "stderr"), as Cloud Run logs it: resource cloud_run_revision, log
// run.googleapis.com/stdout|stderr, label instanceId; stderr is ERROR.
func InstanceEntry(project, location, service, revision, instance, stream, text string) Entry {
	sev := "DEFAULT"
	if stream == "stderr" {
		sev = "ERROR"
	}
	return Entry{
		Time:         time.Now(),
		LogName:      "projects/" + project + "/logs/run.googleapis.com%2F" + stream,
		ResourceType: ResourceType,
		Resource: map[string]string{
			"project_id": project, "location": location, "service_name": service,
			"revision_name": revision, "configuration_name": service,
		},
		Labels:   map[string]string{"instanceId": instance},
		Severity: sev,
		Text:     text,
	}
}

// SystemEntry is a message of the platform about an instance, as Cloud Run
// writes to run.googleapis.com/varlog/system (exits, failed probes).
func SystemEntry(project, location, service, revision, instance, severity, text string) Entry {
	e := InstanceEntry(project, location, service, revision, instance, "stdout", text)
	e.LogName = "projects/" + project + "/logs/run.googleapis.com%2Fvarlog%2Fsystem"
	e.Severity = severity
	return e
}

// DefaultMaxEntries is how many entries a Store keeps unless told otherwise.
const DefaultMaxEntries = 200_000

// Store keeps the most recent entries in memory. It is safe for concurrent use.
type Store struct {
	mu sync.Mutex
	// ring holds the entries, oldest at head once it is full: dropping the
	// oldest must not copy the rest (a chatty instance writes 100k lines).
	ring []Entry
	head int
	max  int
	next uint64
}

// NewStore returns a store keeping at most max entries (≤ 0: DefaultMaxEntries);
// the oldest are dropped first.
func NewStore(max int) *Store {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	return &Store{max: max}
}

// Append stores e, assigning its InsertID (and Time, if zero).
func (s *Store) Append(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	e.InsertID = strconv.FormatUint(s.next, 10)
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(s.ring) < s.max {
		s.ring = append(s.ring, e)
		return
	}
	s.ring[s.head] = e
	s.head = (s.head + 1) % s.max
}

// Entries returns the entries for which keep returns true (all if keep is
// nil), in insertion order.
func (s *Store) Entries(keep func(Entry) bool) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for i := range s.ring {
		e := s.ring[(s.head+i)%len(s.ring)]
		if keep == nil || keep(e) {
			out = append(out, e)
		}
	}
	return out
}
