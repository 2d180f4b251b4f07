package docker

import (
	"github.com/moby/moby/api/types/container"

	"minik.dev/minik/drivers"
	"minik.dev/minik/nodeconfig"
)

// The engine's names (containers, volumes, the network) come from the
// cluster's name alone, so two minik homes with a cluster of the same
// name would share them. Everything a profile makes carries its folder in
// nodeconfig.LabelProfile: a profile finding another's name in the engine
// stops, and deleting one never touches the other's.

// otherProfile returns the profile folder labels name when it is not
// profileDir; "" for this profile's things and for unlabelled ones.
func otherProfile(labels map[string]string, profileDir string) string {
	if p := labels[nodeconfig.LabelProfile]; p != "" && p != profileDir {
		return p
	}
	return ""
}

// nodeProfile is the profile folder a container belongs to: its label, or
// for a node made before the label, the folder it mounts (a pod may mount
// anything there).
func nodeProfile(labels map[string]string, mounts []container.MountPoint) string {
	if p := labels[nodeconfig.LabelProfile]; p != "" || labels[nodeconfig.LabelKind] != nodeconfig.KindNode {
		return p
	}
	for _, m := range mounts {
		if m.Destination == nodeProfileDir {
			return m.Source
		}
	}
	return ""
}

// takenError is a cluster name that another minik home's cluster holds in
// the engine.
func takenError(cluster, what, profileDir string) error {
	return &drivers.TakenError{Backend: "the Docker Engine", Cluster: cluster, What: what, ProfileDir: profileDir}
}
