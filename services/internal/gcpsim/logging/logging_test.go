package logging

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestFilter(t *testing.T) {
	e := InstanceEntry("p", "r", "web", "web-00001-abc", "inst-1", "stderr", "Hello World")
	e.Time = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		filter string
		want   bool
	}{
		{``, true},
		{`resource.type="cloud_run_revision"`, true},
		{`resource.type = "cloud_run_revision" AND resource.labels.service_name="web"`, true},
		{`resource.labels.service_name="api"`, false},
		{"resource.labels.revision_name=\"web-00001-abc\"\nlabels.\"instanceId\"=\"inst-1\"", true},
		{`labels.instanceId!="inst-1"`, false},
		{`labels.missing!="x"`, true},
		{`labels.missing="x"`, false},
		{`severity>=ERROR`, true},
		{`severity<WARNING`, false},
		{`textPayload:"hello"`, true},
		{`textPayload:"bye"`, false},
		{`logName="projects/p/logs/run.googleapis.com%2Fstderr"`, true},
		{`timestamp>="2030-01-01T00:00:00Z"`, true},
		{`timestamp<"2030-01-01T00:00:00Z"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			f, err := ParseFilter(tc.filter)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := f.Match(e); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`a="b" OR c="d"`, `NOT a="b"`, `(a="b")`, `severity>=LOUD`, `timestamp>"yesterday"`, `resource.type`, `unknown.field="x"`, `textPayload:"open`} {
		t.Run("rejects "+bad, func(t *testing.T) {
			if _, err := ParseFilter(bad); err == nil {
				t.Errorf("ParseFilter(%q) succeeded", bad)
			}
		})
	}
}

func TestStoreKeepsTheNewest(t *testing.T) {
	tests := []struct {
		appends int
		want    []string
	}{
		{appends: 2, want: []string{"1", "2"}},
		{appends: 3, want: []string{"1", "2", "3"}},
		{appends: 5, want: []string{"3", "4", "5"}},
		{appends: 9, want: []string{"7", "8", "9"}}, // wrapped more than once
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.appends), func(t *testing.T) {
			s := NewStore(3)
			for i := 1; i <= tt.appends; i++ {
				s.Append(Entry{Text: strconv.Itoa(i)})
			}
			var got []string
			for _, e := range s.Entries(nil) {
				if e.InsertID != e.Text {
					t.Errorf("entry %q has InsertID %q", e.Text, e.InsertID)
				}
				got = append(got, e.Text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries %q, want %q", got, tt.want)
			}
		})
	}
}

// BenchmarkAppendFull appends to a full store: the cost must not grow with
// its size (it once copied every kept entry per append).
func BenchmarkAppendFull(b *testing.B) {
	for _, size := range []int{1_000, DefaultMaxEntries} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			s := NewStore(size)
			for range size {
				s.Append(Entry{Text: "x"})
			}
			b.ResetTimer()
			for b.Loop() {
				s.Append(Entry{Text: "x"})
			}
		})
	}
}

func TestServer(t *testing.T) {
	ctx := context.Background()
	store := NewStore(0)
	srv := NewServer(store)
	base := time.Now()
	for i, txt := range []string{"a", "b", "c"} {
		e := InstanceEntry("p", "r", "web", "web-1", "i", "stdout", txt)
		e.Time = base.Add(time.Duration(i) * time.Second)
		store.Append(e)
	}
	store.Append(InstanceEntry("other", "r", "web", "web-1", "i", "stdout", "elsewhere"))

	t.Run("lists a project's entries in pages, newest first on request", func(t *testing.T) {
		var texts []string
		token := ""
		for {
			resp, err := srv.ListLogEntries(ctx, &loggingpb.ListLogEntriesRequest{
				ResourceNames: []string{"projects/p"}, Filter: `resource.type="cloud_run_revision"`,
				OrderBy: "timestamp desc", PageSize: 2, PageToken: token,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range resp.GetEntries() {
				texts = append(texts, e.GetTextPayload())
				if e.GetResource().GetLabels()["service_name"] != "web" || e.GetLabels()["instanceId"] != "i" {
					t.Errorf("entry %v lacks its labels", e)
				}
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if len(texts) != 3 || texts[0] != "c" || texts[2] != "a" {
			t.Errorf("texts = %v, want [c b a]", texts)
		}
	})
	t.Run("written entries are listed", func(t *testing.T) {
		_, err := srv.WriteLogEntries(ctx, &loggingpb.WriteLogEntriesRequest{
			LogName:  "projects/p/logs/app",
			Resource: &monitoredres.MonitoredResource{Type: "global"},
			Entries:  []*loggingpb.LogEntry{{Payload: &loggingpb.LogEntry_TextPayload{TextPayload: "written"}, Timestamp: timestamppb.Now()}},
		})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.ListLogEntries(ctx, &loggingpb.ListLogEntriesRequest{ResourceNames: []string{"projects/p"}, Filter: `resource.type="global"`})
		if err != nil || len(resp.GetEntries()) != 1 || resp.GetEntries()[0].GetTextPayload() != "written" {
			t.Errorf("list = %v, %v", resp, err)
		}
	})
	t.Run("a bad request is invalid", func(t *testing.T) {
		for _, req := range []*loggingpb.ListLogEntriesRequest{
			{},
			{ResourceNames: []string{"organizations/1"}},
			{ResourceNames: []string{"projects/p"}, Filter: "a OR b"},
			{ResourceNames: []string{"projects/p"}, OrderBy: "severity"},
		} {
			if _, err := srv.ListLogEntries(ctx, req); status.Code(err) != codes.InvalidArgument {
				t.Errorf("ListLogEntries(%v) = %v, want InvalidArgument", req, err)
			}
		}
	})
}

func TestJSONLines(t *testing.T) {
	e := InstanceEntry("p", "r", "web", "web-00001-abc", "inst-1", "stderr", `{"severity":"ERROR","message":"dial hub","container":"abc123"}`)
	for filter, want := range map[string]bool{
		`jsonPayload.container="abc123"`: true,
		`jsonPayload.container="other"`:  false,
		`jsonPayload.message:"dial"`:     true,
	} {
		f, err := ParseFilter(filter)
		if err != nil || f.Match(e) != want {
			t.Errorf("%s: match %v (%v), want %v", filter, f.Match(e), err, want)
		}
	}
	if p := toProto(e).GetJsonPayload(); p == nil || p.GetFields()["message"].GetStringValue() != "dial hub" {
		t.Fatalf("a JSON line is not jsonPayload: %v", toProto(e))
	}
	if got := toProto(InstanceEntry("p", "r", "web", "rev", "i", "stdout", "plain")).GetTextPayload(); got != "plain" {
		t.Fatalf("a plain line is %q", got)
	}
}
