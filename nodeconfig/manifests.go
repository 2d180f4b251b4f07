package nodeconfig

import "time"

// The manifests folder's record in the cluster: a ConfigMap in kube-system
// whose data holds what was applied (the inventory that pruning reads) and
// how each file went. The control plane writes it; `minik manifests` reads it.
const (
	ManifestsConfigMap    = "minik-manifests"
	ManifestsInventoryKey = "inventory.json"
	ManifestsStatusKey    = "status.json"
	// ManifestsFieldManager owns the fields the folder's files set.
	ManifestsFieldManager = "minik-manifests"
)

// ManifestObject names one object a manifest made.
type ManifestObject struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// File is the file it came from, relative to the folder.
	File string `json:"file"`
}

// ManifestFile is how one file of the folder was last applied.
type ManifestFile struct {
	File      string    `json:"file"`
	AppliedAt time.Time `json:"appliedAt"`
	// Objects are "Kind namespace/name" of what it holds.
	Objects []string `json:"objects,omitempty"`
	// Errors are "document N: reason"; empty when all applied.
	Errors []string `json:"errors,omitempty"`
}

// The built-in Ingress controller: the control plane makes its IngressClass
// and LoadBalancer Service and writes Ingresses' addresses; on docker the
// control-plane node's agent serves the traffic.
const (
	IngressClass      = "minik"
	IngressController = "minik.dev/ingress"
	// IngressService (in kube-system) is the LoadBalancer Service whose
	// address Ingresses are served on; AnnotationServedBy on it tells the
	// Service proxy that the Ingress controller answers its ports.
	IngressService     = "ingress-minik"
	AnnotationServedBy = "minik.dev/served-by"
)
