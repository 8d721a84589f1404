package archtest

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the module path the rules speak of.
const Module = "github.com/sockerless/sockerless"

// Graph maps each package of the module to every package it depends on,
// directly or not (go list's Deps).
type Graph map[string][]string

// Rule forbids packages that From matches to depend on packages that To
// matches.
type Rule struct {
	Name string
	From func(pkg string) bool
	To   func(dep string, from string) bool
}

// under reports whether pkg is the module-relative path p or below it.
func under(pkg, p string) bool {
	full := Module + "/" + p
	return pkg == full || strings.HasPrefix(pkg, full+"/")
}

// anyUnder matches packages at or below any of the module-relative paths.
func anyUnder(paths ...string) func(string) bool {
	return func(pkg string) bool {
		for _, p := range paths {
			if under(pkg, p) {
				return true
			}
		}
		return false
	}
}

// Adapters are the packages that connect the engine to one outside thing
// (a store, Google's APIs, a registry, the agents, the clients). They
// meet only through the engine's interfaces, wired in cmd/ and
// controlplane, never through each other.
var Adapters = []string{
	"services/internal/store/bolt",
	"services/internal/store/firestore",
	"services/internal/functions/gcf",
	"services/internal/images",
	"services/internal/volumes/gcs",
	"services/internal/volumes/localfs",
	"services/internal/agenthub",
	"services/internal/clientlink",
	"services/internal/dockerapi",
}

// adapterOf returns the adapter pkg belongs to, or "".
func adapterOf(pkg string) string {
	for _, a := range Adapters {
		if under(pkg, a) {
			return a
		}
	}
	return ""
}

// simUsers may import gcpsim: gcpsim itself, the binaries, the dev wiring
// and test helpers.
var simUsers = anyUnder(
	"services/internal/gcpsim",
	"services/cmd",
	"services/internal/devstack",
	"services/e2e",
	"services/internal/testimage",
	"services/internal/testnet",
	"services/internal/store/storetest",
	"services/internal/store/firestore/fsemu",
	"services/internal/volumes/volumetest",
	"services/internal/archtest",
)

// forbiddenInEngine are import path prefixes the engine must not reach:
// cloud SDKs, HTTP routers and WebSocket libraries.
var forbiddenInEngine = []string{
	"cloud.google.com/",
	"google.golang.org/api",
	"google.golang.org/grpc",
	"github.com/go-chi/",
	"github.com/coder/websocket",
	"github.com/gorilla/websocket",
	"nhooyr.io/websocket",
}

// Rules are the module's dependency rules.
var Rules = []Rule{
	{
		Name: "the agent imports no control-plane code",
		From: anyUnder("agent"),
		To:   func(dep, _ string) bool { return under(dep, "services") },
	},
	{
		Name: "the engine imports no cloud SDK, router or WebSocket library",
		From: anyUnder("services/internal/engine"),
		To: func(dep, _ string) bool {
			for _, p := range forbiddenInEngine {
				if strings.HasPrefix(dep, p) {
					return true
				}
			}
			return false
		},
	},
	{
		Name: "an adapter imports no other adapter",
		From: func(pkg string) bool { return adapterOf(pkg) != "" },
		To: func(dep, from string) bool {
			a := adapterOf(dep)
			return a != "" && a != adapterOf(from)
		},
	},
	{
		Name: "production code imports no gcpsim",
		From: func(pkg string) bool { return strings.HasPrefix(pkg, Module+"/") && !simUsers(pkg) },
		To:   func(dep, _ string) bool { return under(dep, "services/internal/gcpsim") },
	},
}

// Check returns one line per broken rule and offending dependency, sorted.
func Check(g Graph, rules []Rule) []string {
	var out []string
	for pkg, deps := range g {
		for _, r := range rules {
			if !r.From(pkg) {
				continue
			}
			for _, d := range deps {
				if r.To(d, pkg) {
					out = append(out, fmt.Sprintf("%s: %s depends on %s", r.Name, pkg, d))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
