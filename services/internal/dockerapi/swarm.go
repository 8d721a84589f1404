package dockerapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Swarm mode. Sockerless is never part of a swarm, so the swarm routes
// answer as a Docker engine outside one: 503 with its texts (clients such
// as docker-py's swarm leave in tear-downs rely on those), and joining or
// making one is refused.
const (
	errNoSwarm   = "This node is not part of a swarm"
	errNoManager = `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`
	errNoSwarmOp = "Sockerless does not run swarm mode: containers run as Cloud Run functions, not as swarm services"
)

// swarmRoutes adds the swarm, node, service, task, secret and config routes.
func swarmRoutes(r chi.Router) {
	answer := func(code int, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { WriteJSONError(w, code, msg) }
	}
	noSwarm := answer(http.StatusServiceUnavailable, errNoSwarm)
	noManager := answer(http.StatusServiceUnavailable, errNoManager)
	refused := answer(http.StatusNotImplemented, errNoSwarmOp)
	r.Post("/swarm/init", refused)
	r.Post("/swarm/join", refused)
	r.Post("/swarm/leave", noSwarm)
	r.Post("/swarm/unlock", noManager)
	r.Get("/swarm/unlockkey", noManager)
	r.Post("/swarm/update", noManager)
	r.Get("/swarm", noManager)
	for _, res := range []string{"nodes", "services", "tasks", "secrets", "configs"} {
		r.Get("/"+res, noManager)
		r.Get("/"+res+"/{id}", noManager)
		r.Delete("/"+res+"/{id}", noManager)
		r.Post("/"+res+"/{id}/update", noManager)
	}
	r.Post("/services/create", noManager)
	r.Get("/services/{id}/logs", noManager)
	r.Get("/tasks/{id}/logs", noManager)
	r.Post("/secrets/create", noManager)
	r.Post("/configs/create", noManager)
}
