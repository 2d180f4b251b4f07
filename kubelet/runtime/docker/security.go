package docker

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"minik.dev/minik/kubelet/engine"
)

// security is a container's effective securityContext, the container's
// own settings over the pod's, as the kubelet merges them.
func security(pod *corev1.Pod, spec *corev1.Container) engine.Security {
	var s engine.Security
	var uid, gid *int64
	if p := pod.Spec.SecurityContext; p != nil {
		uid, gid = p.RunAsUser, p.RunAsGroup
		s.Groups = append(s.Groups, p.SupplementalGroups...)
	}
	if c := spec.SecurityContext; c != nil {
		if c.RunAsUser != nil {
			uid = c.RunAsUser
		}
		if c.RunAsGroup != nil {
			gid = c.RunAsGroup
		}
		s.Privileged = c.Privileged != nil && *c.Privileged
		s.ReadOnlyRootfs = c.ReadOnlyRootFilesystem != nil && *c.ReadOnlyRootFilesystem
		// The kubelet sets no_new_privs only when escalation is denied
		// outright, and never for a privileged container.
		s.NoNewPrivileges = !s.Privileged && c.AllowPrivilegeEscalation != nil && !*c.AllowPrivilegeEscalation
		if caps := c.Capabilities; caps != nil {
			for _, n := range caps.Add {
				s.CapAdd = append(s.CapAdd, string(n))
			}
			for _, n := range caps.Drop {
				s.CapDrop = append(s.CapDrop, string(n))
			}
		}
	}
	switch {
	case uid != nil && gid != nil:
		s.User = strconv.FormatInt(*uid, 10) + ":" + strconv.FormatInt(*gid, 10)
	case uid != nil:
		s.User = strconv.FormatInt(*uid, 10)
	case gid != nil:
		// A group alone keeps the image's user, as root unless the
		// image names one (the engine resolves the name).
		s.User = "0:" + strconv.FormatInt(*gid, 10)
	}
	return s
}

// safeSysctls are the sysctls the kubelet allows without
// --allowed-unsafe-sysctls: namespaced, and isolated from the node.
var safeSysctls = map[string]bool{
	"kernel.shm_rmid_forced":              true,
	"net.ipv4.ip_local_port_range":        true,
	"net.ipv4.tcp_syncookies":             true,
	"net.ipv4.ping_group_range":           true,
	"net.ipv4.ip_unprivileged_port_start": true,
	"net.ipv4.ip_local_reserved_ports":    true,
	"net.ipv4.tcp_keepalive_time":         true,
	"net.ipv4.tcp_fin_timeout":            true,
	"net.ipv4.tcp_keepalive_intvl":        true,
	"net.ipv4.tcp_keepalive_probes":       true,
	"net.ipv4.tcp_rmem":                   true,
	"net.ipv4.tcp_wmem":                   true,
}

// podSysctls returns the pod's sysctls with their names in dotted form,
// or why the node refuses the pod, as the kubelet's admission does: only
// the safe set, and no network one for a pod on the node's network.
func podSysctls(pod *corev1.Pod) (map[string]string, error) {
	sc := pod.Spec.SecurityContext
	if sc == nil || len(sc.Sysctls) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	var forbidden []string
	for _, s := range sc.Sysctls {
		name := normalizeSysctl(s.Name)
		if !safeSysctls[name] || (pod.Spec.HostNetwork && strings.HasPrefix(name, "net.")) {
			forbidden = append(forbidden, s.Name)
			continue
		}
		out[name] = s.Value
	}
	if len(forbidden) > 0 {
		sort.Strings(forbidden)
		return nil, fmt.Errorf("forbidden sysctl: %q not allowlisted", forbidden[0])
	}
	return out, nil
}

// normalizeSysctl turns a name written with slashes ("kernel/shm_rmid_forced")
// into the dotted form; a name with both keeps its dots as slashes, as the
// kernel's /proc/sys path does.
func normalizeSysctl(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		switch r {
		case '/':
			b.WriteRune('.')
		case '.':
			b.WriteRune('/')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkNonRoot refuses a container whose securityContext says
// runAsNonRoot when it would run as root, with the kubelet's messages: a
// runAsUser of 0, or an image whose user is root (none, or 0) or is a name
// the node cannot tell is not root.
func (m *Runtime) checkNonRoot(ctx context.Context, pod *corev1.Pod, spec *corev1.Container) error {
	var nonRoot *bool
	var uid *int64
	if p := pod.Spec.SecurityContext; p != nil {
		nonRoot, uid = p.RunAsNonRoot, p.RunAsUser
	}
	if c := spec.SecurityContext; c != nil {
		if c.RunAsNonRoot != nil {
			nonRoot = c.RunAsNonRoot
		}
		if c.RunAsUser != nil {
			uid = c.RunAsUser
		}
	}
	if nonRoot == nil || !*nonRoot {
		return nil
	}
	where := fmt.Sprintf("(pod: %q, container: %s)", pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", spec.Name)
	if uid != nil {
		if *uid == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy %s", where)
		}
		return nil
	}
	user, err := m.engine.ImageUser(ctx, spec.Image)
	if err != nil {
		return err
	}
	name, _, _ := strings.Cut(user, ":")
	if name == "" {
		name = "0"
	}
	n, err := strconv.ParseInt(name, 10, 64)
	switch {
	case err != nil:
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root %s", name, where)
	case n == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root %s", where)
	}
	return nil
}
