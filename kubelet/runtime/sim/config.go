package sim

import (
	"fmt"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
)

// ReasonConfigError is the kubelet's waiting reason for a container whose
// config cannot be made.
const ReasonConfigError = "CreateContainerConfigError"

// ConfigError is the kubelet's check of a container's config that needs no
// process to run, for the first container of the pod that fails it: a
// sub-path expanded from the environment (subPathExpr) must have a value
// for every variable it names, and stay relative and inside its volume.
// Variables whose values come from ConfigMaps, Secrets, resources or
// envFrom are not resolved here, so a sub-path naming one is not checked.
func ConfigError(pod *corev1.Pod) (container string, err error) {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if err := subPathError(pod, &list[i]); err != nil {
				return list[i].Name, err
			}
		}
	}
	return "", nil
}

func subPathError(pod *corev1.Pod, c *corev1.Container) error {
	known, unknown := containerEnv(pod, c)
	for _, m := range c.VolumeMounts {
		if m.SubPathExpr == "" {
			continue
		}
		var missing []string
		resolvable := true
		sub := expansion.Expand(m.SubPathExpr, func(name string) string {
			v, ok := known[name]
			switch {
			case unknown[name] || (!ok && len(c.EnvFrom) > 0):
				resolvable = false
			case !ok || v == "":
				missing = append(missing, name)
			}
			return v
		})
		switch {
		case !resolvable:
		case len(missing) > 0:
			slices.Sort(missing)
			return fmt.Errorf("missing value for %s", strings.Join(slices.Compact(missing), ", "))
		case path.IsAbs(sub):
			return fmt.Errorf("error SubPath `%s` must not be an absolute path", sub)
		case slices.Contains(strings.Split(sub, "/"), ".."):
			return fmt.Errorf("unable to provision SubPath `%s`: must not contain '..'", sub)
		}
	}
	return nil
}

// containerEnv is the container's environment as far as the pod says it:
// literal values (expanded as the kubelet does) and the downward API's pod
// fields; unknown names the variables whose values come from elsewhere.
func containerEnv(pod *corev1.Pod, c *corev1.Container) (known map[string]string, unknown map[string]bool) {
	known, unknown = map[string]string{}, map[string]bool{}
	fields := map[string]string{
		"metadata.name": pod.Name, "metadata.namespace": pod.Namespace, "metadata.uid": string(pod.UID),
		"spec.nodeName": pod.Spec.NodeName, "spec.serviceAccountName": pod.Spec.ServiceAccountName,
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			known[e.Name] = expansion.Expand(e.Value, expansion.MappingFuncFor(known))
			delete(unknown, e.Name)
		case e.ValueFrom.FieldRef != nil && fields[e.ValueFrom.FieldRef.FieldPath] != "":
			known[e.Name] = fields[e.ValueFrom.FieldRef.FieldPath]
			delete(unknown, e.Name)
		default:
			delete(known, e.Name)
			unknown[e.Name] = true
		}
	}
	return known, unknown
}
