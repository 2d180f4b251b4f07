package logexport

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// Bounds of what is asked of the apiserver.
const (
	// probeTimeout bounds the first request: a down apiserver must not
	// hold up an export that is wanted because something failed.
	probeTimeout = 5 * time.Second
	// requestTimeout bounds each later request.
	requestTimeout = 20 * time.Second
	// podLogLimit bounds each container log: enough for a failure's story.
	podLogLimit = 10 << 20
)

// exportedKinds are what `kubectl get -A -o yaml` writes for each, to
// kubernetes/RESOURCE.yaml. Secrets are never exported; ConfigMaps are
// listed by name only (they often hold credentials all the same).
var exportedKinds = []schema.GroupVersionResource{
	{Version: "v1", Resource: "pods"},
	{Version: "v1", Resource: "services"},
	{Version: "v1", Resource: "nodes"},
	{Version: "v1", Resource: "persistentvolumes"},
	{Version: "v1", Resource: "persistentvolumeclaims"},
	{Version: "v1", Resource: "events"},
	{Group: "apps", Version: "v1", Resource: "deployments"},
	{Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "apps", Version: "v1", Resource: "daemonsets"},
	{Group: "apps", Version: "v1", Resource: "statefulsets"},
	{Group: "batch", Version: "v1", Resource: "jobs"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
	{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"},
}

// CollectKubernetes writes, under kubernetes/, the objects of
// exportedKinds, the names of ConfigMaps, the nodes' conditions, and
// under pods/NAMESPACE/POD/ every container's log (and its previous one,
// when it restarted). An apiserver that does not answer is noted once as
// missing, with what that leaves out.
func CollectKubernetes(ctx context.Context, rc *rest.Config, b *Bundle) {
	rc = rest.CopyConfig(rc)
	rc.Timeout = requestTimeout
	rc.UserAgent = "minik export logs"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Missing("everything from the apiserver", err)
		return
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		b.Missing("everything from the apiserver", err)
		return
	}
	probe, cancel := context.WithTimeout(ctx, probeTimeout)
	_, err = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(probe)
	cancel()
	if err != nil {
		b.Missing("everything from the apiserver (objects, events, node conditions, pod logs)",
			fmt.Errorf("the apiserver at %s does not answer: %w", rc.Host, err))
		return
	}
	for _, gvr := range exportedKinds {
		collectKind(ctx, dyn, gvr, b)
	}
	collectConfigMapNames(ctx, client, b)
	collectNodeConditions(ctx, client, b)
	collectPodLogs(ctx, client, b)
}

func collectKind(ctx context.Context, dyn dynamic.Interface, gvr schema.GroupVersionResource, b *Bundle) {
	name := "kubernetes/" + gvr.Resource + ".yaml"
	list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Missing(name, fmt.Errorf("list %s: %w", gvr.Resource, err))
		return
	}
	data, err := yaml.Marshal(list.UnstructuredContent())
	if err != nil {
		b.Missing(name, fmt.Errorf("encode %s: %w", gvr.Resource, err))
		return
	}
	_ = b.WriteFile(ctx, name, data)
}

func collectConfigMapNames(ctx context.Context, client kubernetes.Interface, b *Bundle) {
	const name = "kubernetes/configmaps.txt"
	list, err := client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Missing(name, fmt.Errorf("list configmaps: %w", err))
		return
	}
	var s strings.Builder
	s.WriteString("# ConfigMaps by NAMESPACE/NAME (names only: their data may be secret)\n")
	for _, cm := range list.Items {
		fmt.Fprintf(&s, "%s/%s\n", cm.Namespace, cm.Name)
	}
	_ = b.WriteFile(ctx, name, []byte(s.String()))
}

// collectNodeConditions writes what `kubectl describe node` leads with: each
// node's conditions, taints and capacity, in a table a person reads.
func collectNodeConditions(ctx context.Context, client kubernetes.Interface, b *Bundle) {
	const name = "kubernetes/node-conditions.txt"
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Missing(name, fmt.Errorf("list nodes: %w", err))
		return
	}
	_ = b.WriteFile(ctx, name, []byte(NodeConditions(nodes.Items)))
}

// NodeConditions describes nodes' conditions, taints and capacity.
func NodeConditions(nodes []corev1.Node) string {
	var s strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&s, "Node %s\n", n.Name)
		for _, c := range n.Status.Conditions {
			fmt.Fprintf(&s, "  %-20s %-7s %-30s %s (since %s)\n", c.Type, c.Status, c.Reason, c.Message, c.LastTransitionTime.UTC().Format(time.RFC3339))
		}
		for _, t := range n.Spec.Taints {
			fmt.Fprintf(&s, "  taint %s=%s:%s\n", t.Key, t.Value, t.Effect)
		}
		if n.Spec.Unschedulable {
			s.WriteString("  unschedulable (cordoned)\n")
		}
		cpu, mem, pods := n.Status.Capacity.Cpu(), n.Status.Capacity.Memory(), n.Status.Capacity.Pods()
		fmt.Fprintf(&s, "  capacity cpu=%s memory=%s pods=%s\n", cpu, mem, pods)
	}
	return s.String()
}

// collectPodLogs writes every container's log, and the previous
// instance's of a container that restarted, as `kubectl logs [--previous]`.
func collectPodLogs(ctx context.Context, client kubernetes.Interface, b *Bundle) {
	pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Missing("pod logs", fmt.Errorf("list pods: %w", err))
		return
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].Namespace+"/"+pods.Items[i].Name < pods.Items[j].Namespace+"/"+pods.Items[j].Name
	})
	for _, p := range pods.Items {
		restarts := map[string]int32{}
		for _, st := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
			restarts[st.Name] = st.RestartCount
		}
		var names []string
		for _, c := range p.Spec.InitContainers {
			names = append(names, c.Name)
		}
		for _, c := range p.Spec.Containers {
			names = append(names, c.Name)
		}
		for _, c := range names {
			dir := "pods/" + p.Namespace + "/" + p.Name + "/"
			podLog(ctx, client, p, c, false, dir+c+".log", b)
			if restarts[c] > 0 {
				podLog(ctx, client, p, c, true, dir+c+".previous.log", b)
			}
		}
	}
}

func podLog(ctx context.Context, client kubernetes.Interface, p corev1.Pod, container string, previous bool, name string, b *Bundle) {
	limit := int64(podLogLimit)
	b.WriteFrom(ctx, name, func(w io.Writer) error {
		rc, err := client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, Previous: previous, LimitBytes: &limit}).Stream(ctx)
		if err != nil {
			return fmt.Errorf("log of %s/%s container %s: %w", p.Namespace, p.Name, container, err)
		}
		defer rc.Close()
		_, err = io.Copy(w, rc)
		return err
	})
}
