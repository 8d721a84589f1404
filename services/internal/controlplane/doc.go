// Package controlplane wires the control plane together: store, images,
// functions driver, engine, agent hub, Docker API and its listeners, and in
// dev mode the in-process local Google (gcpsim). It is the whole process
// behind cmd/controlplane, kept out of main so tests can run it in-process.
package controlplane
