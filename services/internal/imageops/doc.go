// Package imageops carries out docker's image operations beyond pull,
// tag and rmi, and the container filesystem operations that make or read
// images: save and load, import, commit, diff, export, history, push,
// image prune and the image and container parts of system df.
//
// Image bytes never live on the control plane: an image's layers are in
// a registry (where it was pulled from, or the deployment's image
// repository for images loaded, imported or committed here, which is
// also where functions run them from), and its record is in the store.
// Operations stream: a save reads layers from the registry as it writes
// them, a load or import uploads layers while the request body arrives,
// a commit uploads the layer the agent writes as it writes it.
//
// A container's filesystem is its function instance's. The agent has no
// pristine copy of the image, so for diff and commit this package reads
// the image's file index from its layers (cached per image) and sends it
// to the agent, which compares the instance's files against it, as
// docker compares a container's layer against its image. A container
// whose instance has ended has no filesystem left: diff, commit and
// export say so (501), as docker cp does.
package imageops
