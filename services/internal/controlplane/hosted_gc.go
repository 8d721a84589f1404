package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sockerless/sockerless/services/internal/engine"
	"github.com/sockerless/sockerless/services/internal/fleet"
)

// GCPath is the admin endpoint that deletes the functions the control
// plane made (fleet.Fleet.CollectFunctions). It is served where the Docker API
// is, behind the same bearer token:
//
//	POST /sockerless/v1/gc?all=true                 every function (before terraform destroy)
//	POST /sockerless/v1/gc?older-than=168h          unused functions created over a week ago
//	POST /sockerless/v1/gc?keep=20                  all but the 20 newest unused functions
//	POST /sockerless/v1/gc?keep=20&dry-run=true     say what would go, delete nothing
//
// older-than takes a Go duration or a number of days ("7d"). The answer is
// JSON: {"results": [...], "deleted": N, "errors": [...]}, status 200, or
// 500 when a deletion failed (the results say which).
const GCPath = "/sockerless/v1/gc"

// functionCollector is the fleet's garbage collection.
type functionCollector interface {
	CollectFunctions(ctx context.Context, opts fleet.GCOptions) ([]fleet.GCResult, error)
}

// gcResponse is GCPath's answer.
type gcResponse struct {
	Results []fleet.GCResult `json:"results"`
	Deleted int              `json:"deleted"`
	Errors  []string         `json:"errors,omitempty"`
}

// parseGCOptions reads GCPath's query.
func parseGCOptions(q map[string][]string) (fleet.GCOptions, error) {
	opts := fleet.GCOptions{Keep: -1}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	for k := range q {
		switch k {
		case "all", "older-than", "keep", "dry-run":
		default:
			return opts, fmt.Errorf("unknown parameter %q: want all, older-than, keep or dry-run", k)
		}
	}
	var err error
	if v := get("all"); v != "" {
		if opts.All, err = strconv.ParseBool(v); err != nil {
			return opts, fmt.Errorf("all=%q: want true or false", v)
		}
	}
	if v := get("dry-run"); v != "" {
		if opts.DryRun, err = strconv.ParseBool(v); err != nil {
			return opts, fmt.Errorf("dry-run=%q: want true or false", v)
		}
	}
	if v := get("older-than"); v != "" {
		if days, ok := strings.CutSuffix(v, "d"); ok {
			n, err := strconv.Atoi(days)
			if err != nil || n <= 0 {
				return opts, fmt.Errorf("older-than=%q: want a positive number of days or a duration such as 36h", v)
			}
			opts.OlderThan = time.Duration(n) * 24 * time.Hour
		} else if opts.OlderThan, err = time.ParseDuration(v); err != nil || opts.OlderThan <= 0 {
			return opts, fmt.Errorf("older-than=%q: want a positive duration such as 36h or 7d", v)
		}
	}
	if v := get("keep"); v != "" {
		if opts.Keep, err = strconv.Atoi(v); err != nil || opts.Keep < 0 {
			return opts, fmt.Errorf("keep=%q: want a number of functions, 0 or more", v)
		}
	}
	if !opts.All && opts.OlderThan == 0 && opts.Keep < 0 {
		return opts, fmt.Errorf("say which functions to delete: all=true, older-than=DURATION or keep=N")
	}
	return opts, nil
}

// gcHandler serves GCPath.
func gcHandler(c functionCollector, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "use POST"})
			return
		}
		opts, err := parseGCOptions(r.URL.Query())
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
		// Deleting outlives a client that hangs up: a half-done gc is
		// worse than a finished one nobody reads.
		results, err := c.CollectFunctions(context.WithoutCancel(r.Context()), opts)
		resp := gcResponse{Results: results}
		if resp.Results == nil {
			resp.Results = []fleet.GCResult{}
		}
		for _, res := range results {
			if res.Action == fleet.GCDeleted {
				resp.Deleted++
			}
		}
		status := http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			if engine.KindOf(err) == engine.KindInvalid {
				status = http.StatusBadRequest
			}
			resp.Errors = strings.Split(err.Error(), "\n")
			log.Error("gc", "err", err)
		}
		log.Info("gc done", "all", opts.All, "older_than", opts.OlderThan.String(), "keep", opts.Keep, "dry_run", opts.DryRun, "deleted", resp.Deleted)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(resp)
	})
}
