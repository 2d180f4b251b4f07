package tui

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"minik.dev/minik/nodeconfig"
)

// age is kubectl's short age ("5m", "3d4h"); "<unknown>" for a zero time.
func age(now time.Time, t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// podStatus is what kubectl's STATUS column says about a pod.
func podStatus(p *corev1.Pod) string {
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	initializing := false
	for i, c := range p.Status.InitContainerStatuses {
		switch {
		case c.State.Terminated != nil && c.State.Terminated.ExitCode == 0:
			continue
		case c.State.Terminated != nil:
			if c.State.Terminated.Reason != "" {
				reason = "Init:" + c.State.Terminated.Reason
			} else {
				reason = fmt.Sprintf("Init:ExitCode:%d", c.State.Terminated.ExitCode)
			}
		case c.State.Waiting != nil && c.State.Waiting.Reason != "" && c.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + c.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}
	if !initializing {
		hasRunning := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			c := p.Status.ContainerStatuses[i]
			switch {
			case c.State.Waiting != nil && c.State.Waiting.Reason != "":
				reason = c.State.Waiting.Reason
			case c.State.Terminated != nil && c.State.Terminated.Reason != "":
				reason = c.State.Terminated.Reason
			case c.State.Terminated != nil:
				reason = fmt.Sprintf("ExitCode:%d", c.State.Terminated.ExitCode)
			case c.Ready && c.State.Running != nil:
				hasRunning = true
			}
		}
		if reason == "Completed" && hasRunning {
			reason = "Running"
			if !podReady(p) {
				reason = "NotReady"
			}
		}
	}
	if p.DeletionTimestamp != nil {
		if p.Status.Reason == "NodeLost" {
			return "Unknown"
		}
		return "Terminating"
	}
	return reason
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podReadyCount is "ready/total" containers.
func podReadyCount(p *corev1.Pod) string {
	ready := 0
	for _, c := range p.Status.ContainerStatuses {
		if c.Ready {
			ready++
		}
	}
	return fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
}

func podRestarts(p *corev1.Pod) int64 {
	var n int64
	for _, c := range p.Status.ContainerStatuses {
		n += int64(c.RestartCount)
	}
	return n
}

// podProblem says a pod's status needs attention (CrashLoopBackOff,
// Error, ImagePullBackOff, ...): anything but the normal life cycle.
func podProblem(status string) bool {
	switch status {
	case "Running", "Completed", "Succeeded", "Pending", "ContainerCreating", "PodInitializing", "Terminating":
		return false
	}
	// Init:1/2 is progress; Init:Error and Init:CrashLoopBackOff are not.
	return !(strings.HasPrefix(status, "Init:") && strings.Contains(status, "/"))
}

// rolloutState summarises a deployment like `kubectl rollout status`:
// Available (done), Progressing, Failed (progress deadline exceeded) or
// Paused.
func rolloutState(d *appsv1.Deployment) string {
	if d.Spec.Paused {
		return "Paused"
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return "Failed"
		}
	}
	if rolloutDone(d) {
		return "Available"
	}
	return "Progressing"
}

// rolloutDone is `kubectl rollout status`'s success test.
func rolloutDone(d *appsv1.Deployment) bool {
	want := desired(d)
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == want &&
		st.Replicas == st.UpdatedReplicas && st.AvailableReplicas == st.UpdatedReplicas
}

func desired(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// replicaCounts is "updated/ready/desired".
func replicaCounts(d *appsv1.Deployment) string {
	return fmt.Sprintf("%d/%d/%d", d.Status.UpdatedReplicas, d.Status.ReadyReplicas, desired(d))
}

func images(spec corev1.PodSpec) string {
	var out []string
	for _, c := range spec.Containers {
		out = append(out, c.Image)
	}
	return strings.Join(out, ",")
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// nodeStatus is kubectl's STATUS column for a node.
func nodeStatus(n *corev1.Node) string {
	s := "NotReady"
	if nodeReady(n) {
		s = "Ready"
	}
	if n.Spec.Unschedulable {
		s += ",SchedulingDisabled"
	}
	return s
}

func nodeRoles(n *corev1.Node) string {
	var roles []string
	for k := range n.Labels {
		if r, ok := strings.CutPrefix(k, "node-role.kubernetes.io/"); ok && r != "" {
			roles = append(roles, r)
		}
	}
	s := "<none>"
	if len(roles) > 0 {
		sort.Strings(roles)
		s = strings.Join(roles, ",")
	}
	// A node that joined from another machine (minik-node join) says where
	// it runs: no driver of this machine runs it.
	if n.Labels[nodeconfig.JoinedLabel] == "true" {
		host := n.Labels[nodeconfig.JoinedHostLabel]
		if host == "" {
			host = "another machine"
		}
		s += " (joined, on " + host + ")"
	}
	if n.Labels[nodeconfig.AutoscaledLabel] == "true" {
		s += " (autoscaled)"
	}
	return s
}

// eventTime is when an event last happened.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventObject(e *corev1.Event) string {
	return strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
}

// sortEventsNewestFirst orders events by when they last happened.
func sortEventsNewestFirst(evs []*corev1.Event) []*corev1.Event {
	out := append([]*corev1.Event(nil), evs...)
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := eventTime(out[i]), eventTime(out[j])
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// accessModes abbreviates access modes as kubectl does: RWO, ROX, RWX,
// RWOP, in that order, each once; modes it does not know are left out.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"},
		{corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"},
		{corev1.ReadWriteOncePod, "RWOP"},
	} {
		if slices.Contains(modes, m.mode) {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

// claimStatus is kubectl's STATUS for a claim: its phase (Pending before
// the API has set one), or Terminating once deleted.
func claimStatus(c *corev1.PersistentVolumeClaim) string {
	switch {
	case c.DeletionTimestamp != nil:
		return "Terminating"
	case c.Status.Phase == "":
		return string(corev1.ClaimPending)
	}
	return string(c.Status.Phase)
}

// claimTone: a Pending claim waits (for its first pod, or for room), a
// Terminating one may be held by a pod that still uses it; Lost lost its
// volume.
func claimTone(status string) tone {
	switch status {
	case string(corev1.ClaimPending), "Terminating":
		return toneWarn
	case string(corev1.ClaimLost):
		return toneBad
	}
	return toneNormal
}

// claimCapacity is the bound volume's capacity, or what the claim requests
// while it has none.
func claimCapacity(c *corev1.PersistentVolumeClaim) (resource.Quantity, bool) {
	if q, ok := c.Status.Capacity[corev1.ResourceStorage]; ok {
		return q, true
	}
	q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	return q, ok
}

// claimAccessModes are the bound volume's modes, or the requested ones
// while there is no volume.
func claimAccessModes(c *corev1.PersistentVolumeClaim) string {
	if len(c.Status.AccessModes) > 0 {
		return accessModes(c.Status.AccessModes)
	}
	return accessModes(c.Spec.AccessModes)
}

// claimClass is the claim's StorageClass, the beta annotation first as
// kubectl reads it.
func claimClass(c *corev1.PersistentVolumeClaim) string {
	if cls, ok := c.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return cls
	}
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

// volumeStatus is kubectl's STATUS for a PersistentVolume.
func volumeStatus(pv *corev1.PersistentVolume) string {
	if pv.DeletionTimestamp != nil {
		return "Terminating"
	}
	return string(pv.Status.Phase)
}

// volumeClass is the volume's StorageClass, the beta annotation first.
func volumeClass(pv *corev1.PersistentVolume) string {
	if cls, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return cls
	}
	return pv.Spec.StorageClassName
}

// Default-class annotations, GA and beta, as kubectl reads them.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

func classIsDefault(sc *storagev1.StorageClass) bool {
	return sc.Annotations[defaultClassAnnotation] == "true" || sc.Annotations[betaDefaultClassAnnotation] == "true"
}

// classCells are a StorageClass's NAME (marked "(default)"), PROVISIONER,
// RECLAIM, BINDING MODE and EXPANSION, with the API's defaults filled in
// as kubectl does.
func classCells(sc *storagev1.StorageClass) []string {
	name := sc.Name
	if classIsDefault(sc) {
		name += " (default)"
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	binding := storagev1.VolumeBindingImmediate
	if sc.VolumeBindingMode != nil {
		binding = *sc.VolumeBindingMode
	}
	expand := "false"
	if sc.AllowVolumeExpansion != nil && *sc.AllowVolumeExpansion {
		expand = "true"
	}
	return []string{name, sc.Provisioner, string(reclaim), string(binding), expand}
}

// claimsInUse maps "namespace/claim" to the names of the pods that mount
// the claim, sorted: claims named in the pod's volumes and the claims of
// its generic ephemeral volumes ("POD-VOLUME").
func claimsInUse(pods []*corev1.Pod) map[string][]string {
	m := map[string][]string{}
	for _, p := range pods {
		seen := map[string]bool{}
		for _, v := range p.Spec.Volumes {
			claim := ""
			switch {
			case v.PersistentVolumeClaim != nil:
				claim = v.PersistentVolumeClaim.ClaimName
			case v.Ephemeral != nil:
				claim = p.Name + "-" + v.Name
			}
			if k := p.Namespace + "/" + claim; claim != "" && !seen[k] {
				seen[k] = true
				m[k] = append(m[k], p.Name)
			}
		}
	}
	for _, names := range m {
		sort.Strings(names)
	}
	return m
}

// podUsesClaim says pod p mounts claim ns/name.
func podUsesClaim(p *corev1.Pod, ns, name string) bool {
	return p.Namespace == ns && slices.Contains(claimsInUse([]*corev1.Pod{p})[ns+"/"+name], p.Name)
}

func fmtCPU(milli int64) string {
	if milli >= 10000 {
		return fmt.Sprintf("%d", milli/1000)
	}
	return fmt.Sprintf("%dm", milli)
}

func fmtMem(b int64) string {
	const ki, mi, gi = 1 << 10, 1 << 20, 1 << 30
	switch {
	case b >= 10*gi:
		return fmt.Sprintf("%dGi", b/gi)
	case b >= gi:
		return fmt.Sprintf("%.1fGi", float64(b)/gi)
	case b >= mi:
		return fmt.Sprintf("%dMi", b/mi)
	case b >= ki:
		return fmt.Sprintf("%dKi", b/ki)
	}
	return fmt.Sprintf("%d", b)
}

func percent(use, capacity int64) string {
	if capacity <= 0 {
		return "?"
	}
	return fmt.Sprintf("%d%%", int64(math.Round(float64(use)*100/float64(capacity))))
}

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values, scaled to [0, top]; top <= 0
// scales to the values' own maximum.
func sparkline(vals []float64, width int, top float64) string {
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	if top <= 0 {
		for _, v := range vals {
			if !math.IsNaN(v) {
				top = max(top, v)
			}
		}
	}
	var b strings.Builder
	for _, v := range vals {
		if math.IsNaN(v) {
			// No sample then (Prometheus was off, or the pod not yet there).
			b.WriteRune(' ')
			continue
		}
		i := 0
		if top > 0 {
			i = int(math.Round(v / top * float64(len(sparkRunes)-1)))
		}
		b.WriteRune(sparkRunes[min(max(i, 0), len(sparkRunes)-1)])
	}
	return b.String()
}

func podKey(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func metaTime(t time.Time) metav1.Time { return metav1.NewTime(t) }

// oneLine keeps multi-line messages on their table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// truncate cuts a (possibly styled) line to width cells.
func truncate(s string, width int) string {
	if width <= 0 {
		return s
	}
	return ansi.Truncate(s, width, "…")
}
