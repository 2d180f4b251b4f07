package metricsapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The API this package serves.
const (
	GroupName = "metrics.k8s.io"
	Version   = "v1beta1"
	// PathPrefix is where the handler is mounted.
	PathPrefix = "/apis/" + GroupName
	// APIServiceName is the local APIService that lists the group in discovery.
	APIServiceName = Version + "." + GroupName
	// GroupPriorityMinimum and VersionPriority are metrics-server's.
	GroupPriorityMinimum = 100
	VersionPriority      = 100
)

var (
	groupVersion = metricsv1beta1.SchemeGroupVersion
	scheme       = runtime.NewScheme()
	codecs       = serializer.NewCodecFactory(scheme)
)

func init() {
	utilruntime.Must(metricsv1beta1.AddToScheme(scheme))
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
}

// Objects says which nodes and pods exist, with their labels: metrics of
// objects that are gone are not served, and selectors match these labels.
type Objects interface {
	NodeLabels(name string) (map[string]string, bool)
	PodLabels(namespace, name string) (map[string]string, bool)
}

// Handler serves metrics.k8s.io/v1beta1 under PathPrefix. It sits behind
// the apiserver's authentication and authorization filters.
type Handler struct {
	store   *Store
	objects Objects
	now     func() time.Time
}

// NewHandler serves the usage in store for the objects that exist.
func NewHandler(store *Store, objects Objects) *Handler {
	return &Handler{store: store, objects: objects, now: time.Now}
}

var (
	nodeMetricsResource = groupVersion.WithResource("nodemetrics").GroupResource()
	podMetricsResource  = groupVersion.WithResource("podmetrics").GroupResource()
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok {
		h.error(w, r, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path))
		return
	}
	parts := strings.FieldsFunc(rest, func(c rune) bool { return c == '/' })
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.error(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{Group: GroupName}, strings.ToLower(r.Method)))
		return
	}
	switch {
	case len(parts) == 0:
		h.write(w, r, schema.GroupVersion{}, APIGroup())
		return
	case parts[0] != Version:
		h.error(w, r, apierrors.NewNotFound(schema.GroupResource{Group: GroupName}, parts[0]))
		return
	case len(parts) == 1:
		h.write(w, r, schema.GroupVersion{}, APIResourceList())
		return
	}
	q := r.URL.Query()
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		h.error(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{Group: GroupName, Resource: parts[len(parts)-1]}, "watch"))
		return
	}
	parts = parts[1:]
	switch {
	case len(parts) == 1 && parts[0] == "nodes":
		h.listNodes(w, r)
	case len(parts) == 2 && parts[0] == "nodes":
		h.getNode(w, r, parts[1])
	case len(parts) == 1 && parts[0] == "pods":
		h.listPods(w, r, metav1.NamespaceAll)
	case len(parts) == 3 && parts[0] == "namespaces" && parts[2] == "pods":
		h.listPods(w, r, parts[1])
	case len(parts) == 4 && parts[0] == "namespaces" && parts[2] == "pods":
		h.getPod(w, r, parts[1], parts[3])
	default:
		h.error(w, r, apierrors.NewNotFound(schema.GroupResource{Group: GroupName}, strings.Join(parts, "/")))
	}
}

// selectors reads labelSelector and fieldSelector; the fields supported
// are metadata.name and metadata.namespace, as metrics-server's.
func selectors(r *http.Request) (labels.Selector, fields.Selector, error) {
	q := r.URL.Query()
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("parse labelSelector: %v", err))
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("parse fieldSelector: %v", err))
	}
	for _, req := range fs.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("field selector %q is not supported: only metadata.name and metadata.namespace", req.Field))
		}
	}
	return ls, fs, nil
}

func (h *Handler) listNodes(w http.ResponseWriter, r *http.Request) {
	ls, fs, err := selectors(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	list := &metricsv1beta1.NodeMetricsList{Items: []metricsv1beta1.NodeMetrics{}}
	for name, u := range h.store.Nodes() {
		nl, ok := h.objects.NodeLabels(name)
		if !ok || !ls.Matches(labels.Set(nl)) || !fs.Matches(fields.Set{"metadata.name": name}) {
			continue
		}
		list.Items = append(list.Items, h.nodeMetrics(name, nl, u))
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	h.write(w, r, groupVersion, list)
}

func (h *Handler) getNode(w http.ResponseWriter, r *http.Request, name string) {
	nl, exists := h.objects.NodeLabels(name)
	u, ok := h.store.Node(name)
	if !exists || !ok {
		h.error(w, r, apierrors.NewNotFound(nodeMetricsResource, name))
		return
	}
	m := h.nodeMetrics(name, nl, u)
	h.write(w, r, groupVersion, &m)
}

func (h *Handler) listPods(w http.ResponseWriter, r *http.Request, namespace string) {
	ls, fs, err := selectors(r)
	if err != nil {
		h.error(w, r, err)
		return
	}
	list := &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{}}
	for key, u := range h.store.Pods() {
		if namespace != metav1.NamespaceAll && key.Namespace != namespace {
			continue
		}
		pl, ok := h.objects.PodLabels(key.Namespace, key.Name)
		if !ok || !ls.Matches(labels.Set(pl)) || !fs.Matches(fields.Set{"metadata.name": key.Name, "metadata.namespace": key.Namespace}) {
			continue
		}
		list.Items = append(list.Items, h.podMetrics(key, pl, u))
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	h.write(w, r, groupVersion, list)
}

func (h *Handler) getPod(w http.ResponseWriter, r *http.Request, namespace, name string) {
	key := PodKey{Namespace: namespace, Name: name}
	pl, exists := h.objects.PodLabels(namespace, name)
	u, ok := h.store.Pod(key)
	if !exists || !ok {
		h.error(w, r, apierrors.NewNotFound(podMetricsResource, name))
		return
	}
	m := h.podMetrics(key, pl, u)
	h.write(w, r, groupVersion, &m)
}

func (h *Handler) nodeMetrics(name string, nodeLabels map[string]string, u Usage) metricsv1beta1.NodeMetrics {
	return metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: nodeLabels, CreationTimestamp: metav1.NewTime(h.now())},
		Timestamp:  metav1.NewTime(u.Timestamp),
		Window:     metav1.Duration{Duration: u.Window},
		Usage:      resourceList(u),
	}
}

func (h *Handler) podMetrics(key PodKey, podLabels map[string]string, u PodUsage) metricsv1beta1.PodMetrics {
	m := metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: podLabels, CreationTimestamp: metav1.NewTime(h.now())},
		Timestamp:  metav1.NewTime(u.Timestamp),
		Window:     metav1.Duration{Duration: u.Window},
		Containers: make([]metricsv1beta1.ContainerMetrics, 0, len(u.Containers)),
	}
	for _, c := range u.Containers {
		m.Containers = append(m.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: resourceList(c.Usage)})
	}
	return m
}

func resourceList(u Usage) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(clampInt64(u.CPUNanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(clampInt64(u.MemoryBytes), resource.BinarySI),
	}
}

func clampInt64(v uint64) int64 {
	const maxInt64 = 1<<63 - 1
	return int64(min(v, maxInt64))
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion, obj runtime.Object) {
	responsewriters.WriteObjectNegotiated(codecs, negotiation.DefaultEndpointRestrictions, gv, w, r, http.StatusOK, obj, false)
}

func (h *Handler) error(w http.ResponseWriter, r *http.Request, err error) {
	responsewriters.ErrorNegotiated(err, codecs, groupVersion, w, r)
}

// APIGroup is the group's discovery document.
func APIGroup() *metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: groupVersion.String(), Version: Version}
	return &metav1.APIGroup{Name: GroupName, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

var verbs = metav1.Verbs{"get", "list"}

// APIResourceList is the version's discovery document.
func APIResourceList() *metav1.APIResourceList {
	return &metav1.APIResourceList{
		GroupVersion: groupVersion.String(),
		APIResources: []metav1.APIResource{
			{Name: "nodes", Namespaced: false, Kind: "NodeMetrics", Verbs: verbs},
			{Name: "pods", Namespaced: true, Kind: "PodMetrics", Verbs: verbs},
		},
	}
}

// AggregatedDiscovery is the version's entry in aggregated discovery
// (/apis as apidiscovery.k8s.io/v2), which kubectl reads.
func AggregatedDiscovery() apidiscoveryv2.APIVersionDiscovery {
	resource := func(name, kind string, scope apidiscoveryv2.ResourceScope) apidiscoveryv2.APIResourceDiscovery {
		return apidiscoveryv2.APIResourceDiscovery{
			Resource:     name,
			ResponseKind: &metav1.GroupVersionKind{Group: GroupName, Version: Version, Kind: kind},
			Scope:        scope,
			Verbs:        verbs,
		}
	}
	return apidiscoveryv2.APIVersionDiscovery{
		Version: Version,
		Resources: []apidiscoveryv2.APIResourceDiscovery{
			resource("nodes", "NodeMetrics", apidiscoveryv2.ScopeCluster),
			resource("pods", "PodMetrics", apidiscoveryv2.ScopeNamespace),
		},
		Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent,
	}
}
