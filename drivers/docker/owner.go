package docker

import (
	"fmt"
	"path/filepath"

	"github.com/moby/moby/api/types/container"

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
type takenError struct {
	cluster string
	// what is the thing found, profileDir the folder it belongs to.
	what, profileDir string
}

func (e *takenError) Error() string {
	// A profile's folder is MINIK_HOME/profiles/NAME.
	home := filepath.Dir(filepath.Dir(e.profileDir))
	return fmt.Sprintf("the Docker Engine already has a cluster named %s from another minik home (%s belongs to MINIK_HOME=%s): choose another profile name with -p, or delete that cluster from its home", e.cluster, e.what, home)
}
