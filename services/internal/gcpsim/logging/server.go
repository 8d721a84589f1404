package logging

import (
	"context"
	"sort"
	"strings"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"github.com/sockerless/sockerless/services/internal/gcpsim/resname"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	ltype "google.golang.org/genproto/googleapis/logging/type"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Server serves a Store as google.logging.v2.LoggingServiceV2.
type Server struct {
	loggingpb.UnimplementedLoggingServiceV2Server
	store *Store
}

// NewServer returns the Logging API of store.
func NewServer(store *Store) *Server { return &Server{store: store} }

// ListLogEntries lists the entries of the requested projects that match the
// filter, oldest first unless order_by is "timestamp desc".
func (s *Server) ListLogEntries(_ context.Context, req *loggingpb.ListLogEntriesRequest) (*loggingpb.ListLogEntriesResponse, error) {
	if len(req.GetResourceNames()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "resource_names is required")
	}
	var prefixes []string
	for _, rn := range req.GetResourceNames() {
		if !strings.HasPrefix(rn, "projects/") {
			return nil, status.Errorf(codes.InvalidArgument, "gcpsim supports only projects/P resource names, got %q", rn)
		}
		prefixes = append(prefixes, strings.TrimSuffix(rn, "/")+"/logs/")
	}
	f, err := ParseFilter(req.GetFilter())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	desc := false
	switch strings.ToLower(strings.Join(strings.Fields(req.GetOrderBy()), " ")) {
	case "", "timestamp asc", "timestamp":
	case "timestamp desc":
		desc = true
	default:
		return nil, status.Errorf(codes.InvalidArgument, "order_by %q: use \"timestamp asc\" or \"timestamp desc\"", req.GetOrderBy())
	}
	entries := s.store.Entries(func(e Entry) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(e.LogName, p) {
				return f.Match(e)
			}
		}
		return false
	})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Time.Before(entries[j].Time) })
	if desc {
		for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
			entries[i], entries[j] = entries[j], entries[i]
		}
	}
	page, next, err := resname.Page(entries, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &loggingpb.ListLogEntriesResponse{NextPageToken: next}
	for _, e := range page {
		resp.Entries = append(resp.Entries, toProto(e))
	}
	return resp, nil
}

// WriteLogEntries stores entries; the request's log name, resource and
// labels fill in what entries leave out.
func (s *Server) WriteLogEntries(_ context.Context, req *loggingpb.WriteLogEntriesRequest) (*loggingpb.WriteLogEntriesResponse, error) {
	for _, pe := range req.GetEntries() {
		e := Entry{LogName: pe.GetLogName(), Severity: pe.GetSeverity().String(), Text: pe.GetTextPayload(), JSON: pe.GetJsonPayload()}
		if e.LogName == "" {
			e.LogName = req.GetLogName()
		}
		if !strings.HasPrefix(e.LogName, "projects/") || !strings.Contains(e.LogName, "/logs/") {
			return nil, status.Errorf(codes.InvalidArgument, "log_name %q: want projects/P/logs/ID", e.LogName)
		}
		res := pe.GetResource()
		if res == nil {
			res = req.GetResource()
		}
		e.ResourceType, e.Resource = res.GetType(), res.GetLabels()
		e.Labels = map[string]string{}
		for k, v := range req.GetLabels() {
			e.Labels[k] = v
		}
		for k, v := range pe.GetLabels() {
			e.Labels[k] = v
		}
		if ts := pe.GetTimestamp(); ts != nil {
			e.Time = ts.AsTime()
		} else {
			e.Time = time.Now()
		}
		if !req.GetDryRun() {
			s.store.Append(e)
		}
	}
	return &loggingpb.WriteLogEntriesResponse{}, nil
}

func toProto(e Entry) *loggingpb.LogEntry {
	sev := ltype.LogSeverity(ltype.LogSeverity_value[e.Severity])
	out := &loggingpb.LogEntry{
		LogName:          e.LogName,
		Resource:         &monitoredres.MonitoredResource{Type: e.ResourceType, Labels: e.Resource},
		Payload:          &loggingpb.LogEntry_TextPayload{TextPayload: e.Text},
		Timestamp:        timestamppb.New(e.Time),
		ReceiveTimestamp: timestamppb.New(e.Time),
		Severity:         sev,
		InsertId:         e.InsertID,
		Labels:           e.Labels,
	}
	if e.JSON != nil {
		out.Payload = &loggingpb.LogEntry_JsonPayload{JsonPayload: e.JSON}
	}
	return out
}
