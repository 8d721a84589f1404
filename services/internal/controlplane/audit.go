package controlplane

import (
	"context"
	"fmt"
	"log/slog"

	"cloud.google.com/go/logging"
	"google.golang.org/api/option"
	mrpb "google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sockerless/sockerless/services/internal/audit"
)

// auditSink writes the audit trail to Cloud Logging in project (gcpsim's
// when endpoint is set) and, in --dev, to log as well. The client buffers;
// closing it (closers) sends what is pending.
func (cfg *Config) auditSink(ctx context.Context, project, endpoint string, log *slog.Logger, closers *closeStack) (audit.Sink, error) {
	var opts []option.ClientOption
	var loggerOpts []logging.LoggerOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
		// No metadata server to detect the resource from.
		loggerOpts = append(loggerOpts, logging.CommonResource(&mrpb.MonitoredResource{Type: "global", Labels: map[string]string{"project_id": project}}))
	}
	client, err := logging.NewClient(ctx, "projects/"+project, opts...)
	if err != nil {
		return nil, fmt.Errorf("audit: logging client: %w", err)
	}
	client.OnError = func(err error) { log.Warn("audit: write to Cloud Logging", "err", err) }
	closers.add(client.Close)
	var sink audit.Sink = audit.CloudSink{Logger: client.Logger(audit.LogID, loggerOpts...)}
	if cfg.Dev {
		sink = audit.Sinks{sink, audit.SlogSink{Logger: log.With("component", "audit")}}
	}
	return sink, nil
}
