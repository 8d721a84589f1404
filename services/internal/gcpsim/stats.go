package gcpsim

// Stats counts calls and instances; GET /sim/v1/stats serves it as JSON.
type Stats struct {
	CreateFunction    int64 `json:"createFunction"`
	UpdateFunction    int64 `json:"updateFunction"`
	DeleteFunction    int64 `json:"deleteFunction"`
	GetFunction       int64 `json:"getFunction"`
	GenerateUploadURL int64 `json:"generateUploadUrl"`
	CreateService     int64 `json:"createService"`
	UpdateService     int64 `json:"updateService"`
	DeleteService     int64 `json:"deleteService"`
	// Requests is how many function URL requests reached an instance pool.
	Requests         int64 `json:"requests"`
	InstancesStarted int64 `json:"instancesStarted"`
	InstancesRunning int64 `json:"instancesRunning"`
	// Timeouts counts requests answered 504; Rejected those answered 429.
	Timeouts int64 `json:"timeouts"`
	Rejected int64 `json:"rejected"`
	// PendingOperations is how many long-running operations are not done.
	PendingOperations int `json:"pendingOperations"`
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	f, r, i := s.functions.Counts(), s.run.Counts(), s.instances.Counts()
	return Stats{
		CreateFunction: f.CreateFunction, UpdateFunction: f.UpdateFunction, DeleteFunction: f.DeleteFunction,
		GetFunction: f.GetFunction, GenerateUploadURL: f.GenerateUploadURL,
		CreateService: r.CreateService, UpdateService: r.UpdateService, DeleteService: r.DeleteService,
		Requests: i.Requests, InstancesStarted: i.InstancesStarted, InstancesRunning: i.InstancesRunning,
		Timeouts: i.Timeouts, Rejected: i.Rejected,
		PendingOperations: s.ops.Pending(),
	}
}
