// Package images resolves images in registries and makes wrapped images
// (engine.ImageSource) with github.com/google/go-containerregistry, without
// a Docker daemon (DESIGN.md decision 2).
//
// Pull normalizes a reference as docker does ("busybox" is
// docker.io/library/busybox:latest), reads it through the mirror map
// (docker.io → a local or remote mirror), picks linux/amd64 from an index,
// and returns the image's metadata with its config in docker's types
// (config.go); registry failures get docker's wording (errors.go).
//
// Wrap appends the agent layer (agentlayer.go: the agent binary at
// AgentPath, plus its loader and libraries if it is dynamically linked),
// makes the agent the entrypoint and pushes the result to the functions'
// registry under a tag that is a content hash of the base manifest digest,
// the agent layer and the wrap version, so a wrapped image is made once.
package images
