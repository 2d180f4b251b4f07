package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Annotations and labels the deployment controller and kubectl use.
const (
	RevisionAnnotation    = "deployment.kubernetes.io/revision"
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	podTemplateHashLabel  = appsv1.DefaultDeploymentUniqueLabelKey
)

// controllerAnnotations belong to the deployment controller (and kubectl
// apply): an undo keeps the Deployment's own and never copies a
// ReplicaSet's, like kubectl's annotationsToSkip.
var controllerAnnotations = map[string]bool{
	corev1.LastAppliedConfigAnnotation:          true,
	RevisionAnnotation:                          true,
	"deployment.kubernetes.io/revision-history": true,
	"deployment.kubernetes.io/desired-replicas": true,
	"deployment.kubernetes.io/max-replicas":     true,
	"deprecated.deployment.rollback.to":         true,
}

// Scale sets a deployment's replicas.
func (c *Client) Scale(ctx context.Context, ns, name string, replicas int32) error {
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	if _, err := c.kc.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale deployment %s/%s to %d: %w", ns, name, replicas, err)
	}
	return nil
}

// Restart rolls a deployment's pods like `kubectl rollout restart`: a new
// pod-template annotation makes a new ReplicaSet.
func (c *Client) Restart(ctx context.Context, ns, name string, at time.Time) error {
	d, err := c.kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("restart deployment %s/%s: %w", ns, name, err)
	}
	if d.Spec.Paused {
		return fmt.Errorf("restart deployment %s/%s: it is paused; resume it first", ns, name)
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{RestartedAtAnnotation: at.Format(time.RFC3339)}},
	}}})
	if err != nil {
		return fmt.Errorf("restart deployment %s/%s: %w", ns, name, err)
	}
	if _, err := c.kc.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("restart deployment %s/%s: %w", ns, name, err)
	}
	return nil
}

// ErrAlreadyAtRevision says an undo had nothing to do.
var ErrAlreadyAtRevision = fmt.Errorf("deployment already runs that revision's template")

// Undo rolls a deployment back to a revision like `kubectl rollout undo
// --to-revision`: that ReplicaSet's pod template (without the
// pod-template-hash label) and annotations are copied into the Deployment.
func (c *Client) Undo(ctx context.Context, ns, name string, revision int64) error {
	d, err := c.kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("undo deployment %s/%s: %w", ns, name, err)
	}
	if d.Spec.Paused {
		return fmt.Errorf("undo deployment %s/%s: it is paused; resume it first", ns, name)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return fmt.Errorf("undo deployment %s/%s: selector: %w", ns, name, err)
	}
	rsl, err := c.kc.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return fmt.Errorf("undo deployment %s/%s: list replica sets: %w", ns, name, err)
	}
	var rss []*appsv1.ReplicaSet
	for i := range rsl.Items {
		rss = append(rss, &rsl.Items[i])
	}
	var target *appsv1.ReplicaSet
	for _, rs := range OwnedReplicaSets(rss, d) {
		if Revision(rs) == revision {
			target = rs
		}
	}
	if target == nil {
		return fmt.Errorf("undo deployment %s/%s: revision %d not found", ns, name, revision)
	}
	tmpl := target.Spec.Template.DeepCopy()
	delete(tmpl.Labels, podTemplateHashLabel)
	if apiequality.Semantic.DeepEqual(*tmpl, d.Spec.Template) {
		return fmt.Errorf("undo deployment %s/%s to revision %d: %w", ns, name, revision, ErrAlreadyAtRevision)
	}
	// The change-cause and other annotations come from the ReplicaSet.
	skip := controllerAnnotations
	annotations := map[string]string{}
	for k := range skip {
		if v, ok := d.Annotations[k]; ok {
			annotations[k] = v
		}
	}
	for k, v := range target.Annotations {
		if !skip[k] {
			annotations[k] = v
		}
	}
	patch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/spec/template", "value": tmpl},
		{"op": "replace", "path": "/metadata/annotations", "value": annotations},
	})
	if err != nil {
		return fmt.Errorf("undo deployment %s/%s: %w", ns, name, err)
	}
	if _, err := c.kc.AppsV1().Deployments(ns).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("undo deployment %s/%s to revision %d: %w", ns, name, revision, err)
	}
	return nil
}

// DeletePod deletes a pod with its default grace period.
func (c *Client) DeletePod(ctx context.Context, ns, name string) error {
	if err := c.kc.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete pod %s/%s: %w", ns, name, err)
	}
	return nil
}

// Cordon marks a node unschedulable, or schedulable again.
func (c *Client) Cordon(ctx context.Context, node string, unschedulable bool) error {
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, unschedulable)
	if _, err := c.kc.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		verb := "cordon"
		if !unschedulable {
			verb = "uncordon"
		}
		return fmt.Errorf("%s node %s: %w", verb, node, err)
	}
	return nil
}

// Logs streams a container's log, following it, from its last tail lines.
func (c *Client) Logs(ctx context.Context, ns, pod, container string, tail int64) (io.ReadCloser, error) {
	rc, err := c.kc.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{
		Container: container,
		Follow:    true,
		TailLines: &tail,
	}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("logs of %s/%s container %s: %w", ns, pod, container, err)
	}
	return rc, nil
}

// Revision is a ReplicaSet's (or Deployment's) rollout revision, 0 if none.
func Revision(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// OwnedReplicaSets are the ReplicaSets a deployment controls, newest
// revision first.
func OwnedReplicaSets(rss []*appsv1.ReplicaSet, d *appsv1.Deployment) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs.Namespace != d.Namespace {
			continue
		}
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.UID == d.UID {
			out = append(out, rs)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return Revision(out[i]) > Revision(out[j]) })
	return out
}
