package controlplane

import (
	"encoding/json"
	"net/http"
)

// StoreStatsPath answers GET with the store's document operations since
// the control plane started, {"reads": N, "writes": M, "eventWrites": E}
// (E of the M wrote event batches), behind the same
// token as the Docker API: what a workload costs in Firestore operations.
// A store that does not count answers 404.
const StoreStatsPath = "/sockerless/v1/store-stats"

// opCounter is a store that counts its document reads and writes.
type opCounter interface {
	Stats() (reads, writes int64)
	EventWrites() int64
}

// storeStatsHandler serves StoreStatsPath for store.
func storeStatsHandler(store any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "use GET"})
			return
		}
		c, ok := store.(opCounter)
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "this store does not count its operations"})
			return
		}
		reads, writes := c.Stats()
		_ = json.NewEncoder(w).Encode(map[string]int64{"reads": reads, "writes": writes, "eventWrites": c.EventWrites()})
	})
}
