// Package cloudlogs reads what a container's function instance wrote to
// Cloud Logging (DESIGN decision 8): when its agent never called back, the
// store holds no output of the container, and the agent's own lines about
// the failed boot (each carrying the container's agent ID) are found there.
package cloudlogs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/logging/logadmin"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sockerless/sockerless/services/internal/engine"
)

// maxEntries bounds the lines read for one container.
const maxEntries = 1000

// Config says where the logs are.
type Config struct {
	Project string
	// Endpoint is a gcpsim's gRPC host:port (plain text, no credentials);
	// empty: Google's.
	Endpoint string
}

// Reader reads instances' logs; it is engine.BootLogs.
type Reader struct {
	client *logadmin.Client
}

var _ engine.BootLogs = (*Reader)(nil)

// New connects to Cloud Logging (or gcpsim).
func New(ctx context.Context, cfg Config) (*Reader, error) {
	var opts []option.ClientOption
	if cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(cfg.Endpoint), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	c, err := logadmin.NewClient(ctx, "projects/"+cfg.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloud logging client: %w", err)
	}
	return &Reader{client: c}, nil
}

// Close closes the client.
func (r *Reader) Close() error { return r.client.Close() }

// BootLogs returns the lines container c's instances logged with its ID
// since it was created, oldest first, as stderr.
func (r *Reader) BootLogs(ctx context.Context, c *engine.Container) ([]engine.LogEntry, error) {
	// The agent's lines carry the container as its agent ID, ns/id.
	filter := fmt.Sprintf(`resource.type="cloud_run_revision" AND jsonPayload.container=%q AND timestamp>=%q`,
		engine.AgentID(c), c.Created.UTC().Format(time.RFC3339Nano))
	it := r.client.Entries(ctx, logadmin.Filter(filter))
	var out []engine.LogEntry
	for len(out) < maxEntries {
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read cloud logging for %s: %w", c.ID, err)
		}
		out = append(out, engine.LogEntry{Stream: engine.Stderr, Time: e.Timestamp, Data: []byte(line(e.Payload) + "\n")})
	}
	return out, nil
}

// line renders a payload: a structured line as "SEVERITY message k=v …".
func line(p any) string {
	switch v := p.(type) {
	case string:
		return v
	case *structpb.Struct:
		m := v.AsMap()
		var b strings.Builder
		if sev, ok := m["severity"].(string); ok {
			b.WriteString(sev + " ")
		}
		fmt.Fprint(&b, m["message"])
		for _, k := range []string{"err", "error"} {
			if e, ok := m[k]; ok {
				fmt.Fprintf(&b, ": %v", e)
			}
		}
		return b.String()
	}
	return fmt.Sprint(p)
}
