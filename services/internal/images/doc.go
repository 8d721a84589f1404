// Package images resolves images in registries and makes wrapped images
// (engine.ImageSource) with github.com/google/go-containerregistry: Pull
// reads an image's metadata through a mirror map (docker.io → a local or
// remote mirror) without a Docker daemon, and Wrap appends the agent layer
// and pushes the result to the functions' registry, cached by content hash
// (DESIGN.md decision 2).
package images
