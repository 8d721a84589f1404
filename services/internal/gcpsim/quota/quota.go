// Package quota answers Google API write calls over quota as Google does:
// gRPC status RESOURCE_EXHAUSTED (HTTP 429 on REST) with the
// google.rpc.ErrorInfo and google.rpc.QuotaFailure details of the real
// APIs, so clients see the error they will see on Google.
package quota

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limiter counts write calls of one API per region in a sliding window
// (a minute on Google's clock). The zero Limit never refuses.
type Limiter struct {
	// Service is the API ("cloudfunctions.googleapis.com").
	Service string
	// Limit is the write calls allowed per Window and region; 0: no limit.
	Limit int
	// Window is the quota's period; default a minute.
	Window time.Duration

	mu    sync.Mutex
	calls map[string][]time.Time // by region
}

// Allow records one write call in region, or refuses it with Google's
// quota error if the window is full.
func (l *Limiter) Allow(project, region string) error {
	if l == nil || l.Limit <= 0 {
		return nil
	}
	w := l.Window
	if w <= 0 {
		w = time.Minute
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls == nil {
		l.calls = map[string][]time.Time{}
	}
	calls := l.calls[region]
	i := 0
	for i < len(calls) && now.Sub(calls[i]) >= w {
		i++
	}
	calls = calls[i:]
	if len(calls) >= l.Limit {
		l.calls[region] = calls
		return Exceeded(l.Service, project, region, "WriteRequestsPerMinutePerProjectPerRegion", "write_requests", l.Limit)
	}
	l.calls[region] = append(calls, now)
	return nil
}

// Exceeded is Google's error for a call beyond quota limit of service's
// metric (short name, e.g. "write_requests") in project and region.
func Exceeded(service, project, region, limit, metric string, value int) error {
	full := service + "/" + metric
	msg := fmt.Sprintf("Quota exceeded for quota metric '%s' and limit '%s' of service '%s' for consumer 'project:%s'.", full, limit, service, project)
	st := status.New(codes.ResourceExhausted, msg)
	withDetails, err := st.WithDetails(
		&errdetails.ErrorInfo{
			Reason: "RATE_LIMIT_EXCEEDED",
			Domain: "googleapis.com",
			Metadata: map[string]string{
				"service":           service,
				"consumer":          "projects/" + project,
				"quota_metric":      full,
				"quota_limit":       limit,
				"quota_limit_value": fmt.Sprint(value),
				"quota_location":    region,
				"quota_unit":        "1/min/{project}/{region}",
			},
		},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{
			Subject:     "project:" + project,
			Description: msg,
		}}},
	)
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}
