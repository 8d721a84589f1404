package firestore

import (
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"time"
)

// traceEnv, set to anything, logs every document read and write the store
// counts with the chain of Sockerless functions that caused it: how the
// reads and writes of a workload are spent.
const traceEnv = "SOCKERLESS_STORE_TRACE"

var tracing = os.Getenv(traceEnv) != ""

// countReads and countWrites add to the store's counts (and trace them).
func (s *Store) countReads(n int64) {
	s.reads.Add(n)
	if tracing {
		trace("read", n)
	}
}

func (s *Store) countWrites(n int64) {
	s.writes.Add(n)
	if tracing {
		trace("write", n)
	}
}

func trace(kind string, n int64) {
	pc := make([]uintptr, 32)
	frames := runtime.CallersFrames(pc[:runtime.Callers(3, pc)])
	var chain []string
	for {
		f, more := frames.Next()
		if name, ok := strings.CutPrefix(f.Function, "github.com/sockerless/sockerless/services/"); ok {
			chain = append(chain, name)
		}
		if !more {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "%s store %s %d by %s\n", time.Now().UTC().Format("15:04:05.000000"), kind, n, strings.Join(chain, " < "))
}

// traceDone traces the end of a call begun at start.
func traceDone(method string, start time.Time) {
	fmt.Fprintf(os.Stderr, "%s store done %s in %.1f ms\n", time.Now().UTC().Format("15:04:05.000000"), path.Base(method), float64(time.Since(start).Microseconds())/1000)
}
