package docker

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/kubelet/envvars"
	kubeletqos "k8s.io/kubernetes/pkg/kubelet/qos"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
	"k8s.io/utils/ptr"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/nodeconfig"
)

// containerSpec translates a Kubernetes container into the engine's terms:
// environment, command, volumes (emptyDir as volumes; configMap, secret,
// projected and downward API as files copied in) and limits.
func (m *Runtime) containerSpec(ctx context.Context, pod *corev1.Pod, rec *dockerPod, spec *corev1.Container, c *dockerContainer) (engine.ContainerSpec, error) {
	attempt := c.attempt
	if c.id != "" {
		attempt++
	}
	if err := m.checkNonRoot(ctx, pod, spec); err != nil {
		return engine.ContainerSpec{}, err
	}
	env, err := m.environment(ctx, pod, rec, spec)
	if err != nil {
		return engine.ContainerSpec{}, err
	}
	envMap := map[string]string{}
	envList := make([]string, 0, len(env))
	for _, e := range env {
		envMap[e.Name] = e.Value
		envList = append(envList, e.Name+"="+e.Value)
	}
	mapping := expansion.MappingFuncFor(envMap)
	expand := func(in []string) []string {
		if in == nil {
			return nil
		}
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expansion.Expand(s, mapping)
		}
		return out
	}
	cs := engine.ContainerSpec{
		PodUID: string(pod.UID), Namespace: pod.Namespace, PodName: pod.Name, Name: spec.Name,
		Attempt: attempt, SandboxID: rec.sandboxID, Image: spec.Image,
		Command: expand(spec.Command), Args: expand(spec.Args), Env: envList, WorkingDir: spec.WorkingDir,
		Stdin: spec.Stdin, TTY: spec.TTY, StdinOnce: spec.StdinOnce,
		Security:               security(pod, spec),
		TerminationMessagePath: spec.TerminationMessagePath,
		ManagedHosts:           !pod.Spec.HostNetwork,
		ManagedDNS:             !pod.Spec.HostNetwork && m.hasDNS(pod),
	}
	if ptr.Deref(pod.Spec.ShareProcessNamespace, false) {
		cs.PIDNamespace = rec.sandboxID
	}
	if c.target != "" {
		m.mu.Lock()
		t := rec.containers[c.target]
		if t != nil && t.state.Running {
			cs.PIDNamespace = t.id
		}
		m.mu.Unlock()
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		cs.FSGroup = sc.FSGroup
	}
	cs.Resources = containerResources(spec.Resources)
	cs.OOMScoreAdj = kubeletqos.GetContainerOOMScoreAdjust(pod, spec, m.cfg.MemoryBytes)
	volumes := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		volumes[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	for _, vm := range spec.VolumeMounts {
		v := volumes[vm.Name]
		if v == nil {
			return cs, fmt.Errorf("volume mount %q names no volume of the pod", vm.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expansion.Expand(vm.SubPathExpr, mapping)
		}
		if sub != "" && (path.IsAbs(sub) || slices.Contains(strings.Split(sub, "/"), "..")) {
			return cs, fmt.Errorf("volume mount %q: sub-path %q must be relative and stay inside the volume", vm.Name, sub)
		}
		switch {
		case v.EmptyDir != nil:
			name, err := m.engine.EnsureVolume(ctx, string(pod.UID), v.Name, emptyDir(v.EmptyDir))
			if err != nil {
				return cs, err
			}
			cs.Mounts = append(cs.Mounts, engine.Mount{Volume: name, Path: vm.MountPath, ReadOnly: vm.ReadOnly, SubPath: sub, Owned: true,
				OpenRoot: v.EmptyDir.Medium != corev1.StorageMediumMemory})
		case v.HostPath != nil:
			mnt, err := m.hostPathMount(ctx, v, vm, sub)
			if err != nil {
				return cs, err
			}
			cs.Mounts = append(cs.Mounts, mnt)
		case v.Image != nil:
			name, err := m.imageVolume(ctx, pod, v)
			if err != nil {
				return cs, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			// Image volumes are read-only, whatever the mount says.
			cs.Mounts = append(cs.Mounts, engine.Mount{Volume: name, Path: vm.MountPath, ReadOnly: true, SubPath: sub})
		case v.PersistentVolumeClaim != nil:
			name, err := m.claimVolume(ctx, pod, v.PersistentVolumeClaim)
			if err != nil {
				return cs, fmt.Errorf("volume %q: %w", v.Name, err)
			}
			cs.Mounts = append(cs.Mounts, engine.Mount{Volume: name, Path: vm.MountPath, ReadOnly: vm.ReadOnly || v.PersistentVolumeClaim.ReadOnly, SubPath: sub, Owned: true})
		case isFileVolume(v):
			mnt, err := m.fileVolumeMount(rec, v, vm, sub)
			if err != nil {
				return cs, err
			}
			cs.Mounts = append(cs.Mounts, mnt)
		default:
			return cs, fmt.Errorf("volume %q: this volume type is not supported by minik's docker runtime (emptyDir, hostPath directories, files and sockets, persistentVolumeClaim, image, configMap, secret, projected and downwardAPI are)", v.Name)
		}
	}
	return cs, nil
}

// apiServerAddress is where the node's pods reach the apiserver: the
// kubernetes Service (the Service range's first address, port 443), or,
// on a joined node, whose pods have no route to Services, the address
// the node joined through (its certificate names it). "" when neither.
func (m *Runtime) apiServerAddress() (host, port string) {
	if svc := m.cfg.Services(); svc != nil && svc.ServiceCIDR != "" {
		if ip, err := nodeconfig.FirstServiceIP(svc.ServiceCIDR); err == nil {
			return ip.String(), "443"
		}
	}
	if m.cfg.Joined {
		if u, err := url.Parse(m.cfg.APIServer); err == nil && u.Port() != "" {
			return u.Hostname(), u.Port()
		}
	}
	return "", ""
}

// environment resolves a container's env and envFrom.
func (m *Runtime) environment(ctx context.Context, pod *corev1.Pod, rec *dockerPod, spec *corev1.Container) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	set := func(name, value string) {
		for i := range out {
			if out[i].Name == name {
				out[i].Value = value
				return
			}
		}
		out = append(out, corev1.EnvVar{Name: name, Value: value})
	}
	// Every container learns where the apiserver is, as in-cluster
	// clients expect (the kubelet sets these whatever enableServiceLinks).
	if host, port := m.apiServerAddress(); host != "" {
		hostPort := net.JoinHostPort(host, port)
		set("KUBERNETES_SERVICE_HOST", host)
		set("KUBERNETES_SERVICE_PORT", port)
		set("KUBERNETES_SERVICE_PORT_HTTPS", port)
		set("KUBERNETES_PORT", "tcp://"+hostPort)
		set("KUBERNETES_PORT_"+port+"_TCP", "tcp://"+hostPort)
		set("KUBERNETES_PORT_"+port+"_TCP_PROTO", "tcp")
		set("KUBERNETES_PORT_"+port+"_TCP_PORT", port)
		set("KUBERNETES_PORT_"+port+"_TCP_ADDR", host)
	}
	// And, unless the pod says otherwise, where each Service of its
	// namespace is (docker links' variables, as the kubelet sets them).
	if ptr.Deref(pod.Spec.EnableServiceLinks, true) {
		list, err := m.client.CoreV1().Services(pod.Namespace).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return nil, fmt.Errorf("list the services of namespace %s: %w", pod.Namespace, err)
		}
		var services []*corev1.Service
		for i := range list.Items {
			s := &list.Items[i]
			if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone {
				continue
			}
			if s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes" {
				continue
			}
			services = append(services, s)
		}
		sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
		for _, e := range envvars.FromServices(services) {
			set(e.Name, e.Value)
		}
	}
	for _, from := range spec.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			cm, err := m.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(from.ConfigMapRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("configmap %q: %w", from.ConfigMapRef.Name, err)
			}
			data = cm.Data
		case from.SecretRef != nil:
			s, err := m.client.CoreV1().Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if ptr.Deref(from.SecretRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("secret %q: %w", from.SecretRef.Name, err)
			}
			data = map[string]string{}
			for k, v := range s.Data {
				data[k] = string(v)
			}
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, data[k])
		}
	}
	mapping := func() func(string) string {
		vals := map[string]string{}
		for _, e := range out {
			vals[e.Name] = e.Value
		}
		return expansion.MappingFuncFor(vals)
	}
	for _, e := range spec.Env {
		if e.ValueFrom == nil {
			set(e.Name, expansion.Expand(e.Value, mapping()))
			continue
		}
		v, err := m.envValue(ctx, pod, rec, spec, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		set(e.Name, v)
	}
	return out, nil
}

func (m *Runtime) envValue(ctx context.Context, pod *corev1.Pod, rec *dockerPod, spec *corev1.Container, src *corev1.EnvVarSource) (string, error) {
	switch {
	case src.FieldRef != nil:
		return m.fieldValue(pod, rec, src.FieldRef.FieldPath)
	case src.ResourceFieldRef != nil:
		return m.resourceValue(spec, src.ResourceFieldRef)
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		cm, err := m.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := cm.Data[ref.Key]; ok {
				return v, nil
			}
			err = fmt.Errorf("configmap %q has no key %q", ref.Name, ref.Key)
		}
		if ptr.Deref(ref.Optional, false) {
			return "", nil
		}
		return "", err
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		s, err := m.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil {
			if v, ok := s.Data[ref.Key]; ok {
				return string(v), nil
			}
			err = fmt.Errorf("secret %q has no key %q", ref.Name, ref.Key)
		}
		if ptr.Deref(ref.Optional, false) {
			return "", nil
		}
		return "", err
	}
	return "", fmt.Errorf("unsupported value source")
}

// fieldValue is a downward API field of the pod.
func (m *Runtime) fieldValue(pod *corev1.Pod, rec *dockerPod, field string) (string, error) {
	switch field {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		return m.cfg.IP, nil
	case "status.podIP", "status.podIPs":
		return rec.ip, nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	for _, prefix := range []string{"metadata.labels['", "metadata.annotations['"} {
		if key, ok := strings.CutPrefix(field, prefix); ok {
			key = strings.TrimSuffix(key, "']")
			if prefix == "metadata.labels['" {
				return pod.Labels[key], nil
			}
			return pod.Annotations[key], nil
		}
	}
	return "", fmt.Errorf("unsupported field %q", field)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

func (m *Runtime) resourceValue(spec *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	divisor := ref.Divisor
	parts := strings.SplitN(ref.Resource, ".", 2)
	if len(parts) != 2 {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	list := spec.Resources.Limits
	if parts[0] == "requests" {
		list = spec.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(parts[1])]
	if !ok && parts[0] == "limits" {
		// No limit is the node's allocatable, as the kubelet says.
		switch corev1.ResourceName(parts[1]) {
		case corev1.ResourceCPU:
			q, ok = *resource.NewMilliQuantity(m.cfg.CPUMillis, resource.DecimalSI), m.cfg.CPUMillis > 0
		case corev1.ResourceMemory:
			q, ok = *resource.NewQuantity(m.cfg.MemoryBytes, resource.BinarySI), m.cfg.MemoryBytes > 0
		}
	}
	if !ok {
		return "0", nil
	}
	if divisor.IsZero() {
		if parts[1] == string(corev1.ResourceCPU) {
			return strconv.FormatInt((q.MilliValue()+999)/1000, 10), nil
		}
		return strconv.FormatInt(q.Value(), 10), nil
	}
	return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), nil
}

// emptyDir says how the engine keeps an emptyDir: a tmpfs of its size
// limit for medium Memory, else a volume on the engine's disk.
func emptyDir(src *corev1.EmptyDirVolumeSource) engine.EmptyDir {
	if src.Medium != corev1.StorageMediumMemory {
		return engine.EmptyDir{}
	}
	o := engine.EmptyDir{Memory: true}
	if src.SizeLimit != nil {
		o.SizeBytes = src.SizeLimit.Value()
	}
	return o
}

// hostPathMount mounts a directory of the node, or a file or socket in
// one. The node is a container: its directories are volumes of the
// engine, one per node and path, shared by the node's pods; a file is a
// sub-path of its directory's volume.
func (m *Runtime) hostPathMount(ctx context.Context, v *corev1.Volume, vm corev1.VolumeMount, sub string) (engine.Mount, error) {
	dir, want := v.HostPath.Path, ""
	switch t := ptr.Deref(v.HostPath.Type, corev1.HostPathUnset); t {
	case corev1.HostPathUnset, corev1.HostPathDirectory, corev1.HostPathDirectoryOrCreate:
	case corev1.HostPathFile, corev1.HostPathFileOrCreate, corev1.HostPathSocket:
		if sub != "" {
			return engine.Mount{}, fmt.Errorf("volume %q: a sub-path of a hostPath of type %s", v.Name, t)
		}
		dir, sub = path.Dir(path.Clean(v.HostPath.Path)), path.Base(path.Clean(v.HostPath.Path))
		want = map[corev1.HostPathType]string{corev1.HostPathFile: engine.SubPathFile,
			corev1.HostPathFileOrCreate: engine.SubPathFileOrCreate, corev1.HostPathSocket: engine.SubPathSocket}[t]
	default:
		return engine.Mount{}, fmt.Errorf("volume %q: hostPath of type %s is not supported by minik's docker runtime (directories, files and sockets are)", v.Name, t)
	}
	// A folder under the node's /var/log is part of the log folder the
	// agent writes, not a volume of its own.
	dir, within := nodeconfig.HostPathVolume(dir)
	sub = path.Join(within, sub)
	if sub == "." {
		sub = ""
	}
	name, err := m.engine.EnsureNodeVolume(ctx, dir)
	if err != nil {
		return engine.Mount{}, err
	}
	mnt := engine.Mount{Volume: name, Path: vm.MountPath, ReadOnly: vm.ReadOnly, SubPath: sub, SubPathType: want}
	if want == engine.SubPathFile || want == engine.SubPathFileOrCreate {
		// The volume stands for the node's folder: a file the node has
		// (its /etc/hosts, say) starts with the node's content.
		if seed, ok := nodeFile(v.HostPath.Path); ok {
			mnt.Seed, mnt.SubPathType = seed, engine.SubPathFileOrCreate
		}
	}
	return mnt, nil
}

// volumeFiles are the files of a configMap, secret, projected or downward
// API volume, with paths relative to the mount point.
func (m *Runtime) volumeFiles(ctx context.Context, pod *corev1.Pod, rec *dockerPod, v *corev1.Volume) ([]engine.File, error) {
	switch {
	case v.ConfigMap != nil:
		return m.configMapFiles(ctx, pod, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, ptr.Deref(v.ConfigMap.DefaultMode, 0o644))
	case v.Secret != nil:
		return m.secretFiles(ctx, pod, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, ptr.Deref(v.Secret.DefaultMode, 0o644))
	case v.DownwardAPI != nil:
		return m.downwardFiles(pod, v.DownwardAPI.Items, ptr.Deref(v.DownwardAPI.DefaultMode, 0o644))
	case v.Projected != nil:
		mode := ptr.Deref(v.Projected.DefaultMode, 0o644)
		var out []engine.File
		for i := range v.Projected.Sources {
			src := &v.Projected.Sources[i]
			var files []engine.File
			var err error
			switch {
			case src.ConfigMap != nil:
				files, err = m.configMapFiles(ctx, pod, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, mode)
			case src.Secret != nil:
				files, err = m.secretFiles(ctx, pod, src.Secret.Name, src.Secret.Items, src.Secret.Optional, mode)
			case src.DownwardAPI != nil:
				files, err = m.downwardFiles(pod, src.DownwardAPI.Items, mode)
			case src.ServiceAccountToken != nil:
				files, err = m.tokenFile(ctx, pod, rec, v.Name, src.ServiceAccountToken, mode)
			case src.ClusterTrustBundle != nil:
				var anchors []byte
				if anchors, err = m.credentials.TrustBundle(ctx, src.ClusterTrustBundle); err == nil {
					files = []engine.File{{Path: src.ClusterTrustBundle.Path, Data: anchors, Mode: int64(mode)}}
				}
			case src.PodCertificate != nil:
				files, err = m.podCertificateFiles(ctx, pod, v.Name, i, src.PodCertificate, mode)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, files...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("this volume type is not supported by minik's docker runtime (emptyDir, hostPath directories, persistentVolumeClaim, configMap, secret, projected and downwardAPI are)")
}

func keyFiles(data map[string][]byte, items []corev1.KeyToPath, mode int32) ([]engine.File, error) {
	var out []engine.File
	if len(items) == 0 {
		for k, v := range data {
			out = append(out, engine.File{Path: k, Data: v, Mode: int64(mode)})
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("no key %q", it.Key)
		}
		out = append(out, engine.File{Path: it.Path, Data: v, Mode: int64(ptr.Deref(it.Mode, mode))})
	}
	return out, nil
}

func (m *Runtime) configMapFiles(ctx context.Context, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, mode int32) ([]engine.File, error) {
	cm, err := m.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if ptr.Deref(optional, false) {
			return nil, nil
		}
		return nil, fmt.Errorf("get configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(data, items, mode)
}

func (m *Runtime) secretFiles(ctx context.Context, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, mode int32) ([]engine.File, error) {
	s, err := m.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if ptr.Deref(optional, false) {
			return nil, nil
		}
		return nil, fmt.Errorf("get secret %q: %w", name, err)
	}
	return keyFiles(s.Data, items, mode)
}

func (m *Runtime) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode int32) ([]engine.File, error) {
	var out []engine.File
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = m.fieldValue(pod, &dockerPod{}, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			c := containerSpecOf(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return nil, fmt.Errorf("downward API file %s: no container %q", it.Path, it.ResourceFieldRef.ContainerName)
			}
			v, err = m.resourceValue(c, it.ResourceFieldRef)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, engine.File{Path: it.Path, Data: []byte(v), Mode: int64(ptr.Deref(it.Mode, mode))})
	}
	return out, nil
}

// tokenFile asks the apiserver for a token of the pod's service account,
// bound to the pod, as the kubelet does for kube-api-access volumes.
func (m *Runtime) tokenFile(ctx context.Context, pod *corev1.Pod, rec *dockerPod, volume string, src *corev1.ServiceAccountTokenProjection, mode int32) ([]engine.File, error) {
	key := volume + "/" + src.Path
	m.mu.Lock()
	cached, ok := rec.tokens[key]
	m.mu.Unlock()
	if ok && m.now().Before(cached.renewAt) {
		return []engine.File{{Path: src.Path, Data: cached.token, Mode: int64(mode)}}, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := m.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request token for service account %q: %w", sa, err)
	}
	// Renewed at 80 % of its life, as the kubelet's token manager does.
	now := m.now()
	life := tr.Status.ExpirationTimestamp.Sub(now)
	m.mu.Lock()
	rec.tokens[key] = cachedToken{token: []byte(tr.Status.Token), renewAt: now.Add(life * 8 / 10)}
	m.mu.Unlock()
	return []engine.File{{Path: src.Path, Data: []byte(tr.Status.Token), Mode: int64(mode)}}, nil
}

// podCertificateFiles are the files of a podCertificate source as the
// kubelet writes them: the key, the chain, and the two together (key
// first), each at the path the source gives it.
func (m *Runtime) podCertificateFiles(ctx context.Context, pod *corev1.Pod, volume string, index int, src *corev1.PodCertificateProjection, mode int32) ([]engine.File, error) {
	key, chain, err := m.credentials.PodCertificate(ctx, pod, volume, index)
	if err != nil {
		return nil, fmt.Errorf("pod certificate of signer %q: %w", src.SignerName, err)
	}
	var out []engine.File
	for _, f := range []struct {
		path string
		data []byte
	}{
		{src.CredentialBundlePath, append(append([]byte{}, key...), chain...)},
		{src.KeyPath, key},
		{src.CertificateChainPath, chain},
	} {
		if f.path != "" {
			out = append(out, engine.File{Path: f.path, Data: f.data, Mode: int64(mode)})
		}
	}
	return out, nil
}

// cachedToken is a projected service account token until its renewal.
type cachedToken struct {
	token   []byte
	renewAt time.Time
}

// imageVolume returns the volume of an image volume, with the image in the
// node's store (pulled if it is missing).
func (m *Runtime) imageVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) (string, error) {
	ref := v.Image.Reference
	_, ok, err := m.engine.ImagePresent(ctx, ref)
	if err != nil {
		return "", err
	}
	if !ok {
		if err := m.engine.PullImage(ctx, ref); err != nil {
			return "", err
		}
	}
	return m.engine.EnsureImageVolume(ctx, string(pod.UID), v.Name, ref)
}

// CPU shares as the kubelet's cgroups give them.
const (
	minShares = 2
	maxShares = 262144
)

// containerResources are a container's resources in the engine's terms:
// its limits, and CPU shares from its CPU request.
func containerResources(r corev1.ResourceRequirements) engine.Resources {
	var out engine.Resources
	if q, ok := r.Limits[corev1.ResourceCPU]; ok {
		out.CPUMillis = q.MilliValue()
	}
	if q, ok := r.Limits[corev1.ResourceMemory]; ok {
		out.MemoryBytes = q.Value()
	}
	out.CPUShares = minShares
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		out.CPUShares = min(max(q.MilliValue()*1024/1000, minShares), maxShares)
	}
	return out
}

// maxSeed bounds the node file a hostPath file volume starts with.
const maxSeed = 1 << 20

// nodeFile is the content of a regular file of the node (the node agent
// runs in the node), when it has one of at most maxSeed bytes.
func nodeFile(p string) ([]byte, bool) {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSeed {
		return nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	if b == nil {
		b = []byte{}
	}
	return b, true
}
