// Package version holds what `-ldflags -X` stamps into both binaries.
package version

// Version is minik's own version, set at build time.
var Version = "v0.0.0-dev"

// Kubernetes is the release of the embedded control plane and node agent.
const Kubernetes = "v1.37.2"
