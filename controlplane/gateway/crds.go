package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	typedapiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"minik.dev/minik/gateway"
)

const (
	// contentHashAnnotation holds a hash of the CRD as minik embeds it: a
	// restart finds every CRD with its hash and writes nothing, so the
	// apiserver rebuilds no schema, OpenAPI spec or CEL program.
	contentHashAnnotation = "minik.dev/content-hash"
	// establishNudgeAnnotation is changed to make the apiserver look at a
	// CRD again (see waitEstablished).
	establishNudgeAnnotation = "minik.dev/establish-nudge"
)

// nudgeAfter is how long a CRD whose names are accepted may stay not
// Established before it is nudged; the establishing controller takes
// milliseconds when it runs at all.
var nudgeAfter = 3 * time.Second

// settleTimeout bounds waitSettled: a node that never gets Ready must not
// keep Gateway API away.
var settleTimeout = 30 * time.Second

// waitSettled waits until node nodeName is Ready and the default
// ServiceAccount exists, which is what `minik start` waits for, or until
// timeout. Creating the CRDs costs the apiserver over a CPU-second
// (validation and CEL compilation of each CRD on create and on each of its
// status updates, OpenAPI rebuilds); done during start, on two busy cores,
// it made start 1.6 s slower. After it, the CRDs are there a moment after
// start returns instead.
func waitSettled(ctx context.Context, client kubernetes.Interface, nodeName string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()
	for {
		if nodeReady(ctx, client, nodeName) {
			if _, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{}); err == nil {
				klog.V(2).InfoS("cluster settled: installing Gateway API", "waited", time.Since(began).Round(time.Millisecond))
				return
			}
		}
		select {
		case <-ctx.Done():
			klog.InfoS("installing Gateway API before the cluster settled", "waited", time.Since(began).Round(time.Millisecond))
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func nodeReady(ctx context.Context, client kubernetes.Interface, name string) bool {
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// installCRDs creates the CRDs, or updates those whose content differs
// from the embedded ones, and waits until they are served.
func installCRDs(ctx context.Context, ext apiextensions.Interface) error {
	crds, err := gateway.CRDs()
	if err != nil {
		return err
	}
	api := ext.ApiextensionsV1().CustomResourceDefinitions()
	var names []string
	for _, crd := range crds {
		if err := setContentHash(crd); err != nil {
			return err
		}
		if err := retry(ctx, func() error { return applyCRD(ctx, api, crd) }); err != nil {
			return fmt.Errorf("install CRD %s: %w", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	if err := waitEstablished(ctx, api, names); err != nil {
		return err
	}
	klog.InfoS("gateway API CRDs installed", "version", gateway.BundleVersion)
	return nil
}

// setContentHash records in an annotation a hash of everything minik
// writes of the CRD.
func setContentHash(crd *apiextensionsv1.CustomResourceDefinition) error {
	data, err := json.Marshal(struct {
		Labels, Annotations map[string]string
		Spec                apiextensionsv1.CustomResourceDefinitionSpec
	}{crd.Labels, crd.Annotations, crd.Spec})
	if err != nil {
		return fmt.Errorf("hash CRD %s: %w", crd.Name, err)
	}
	sum := sha256.Sum256(data)
	if crd.Annotations == nil {
		crd.Annotations = map[string]string{}
	}
	crd.Annotations[contentHashAnnotation] = hex.EncodeToString(sum[:])
	return nil
}

// applyCRD creates the CRD, or replaces one whose content hash differs.
func applyCRD(ctx context.Context, api typedapiextensionsv1.CustomResourceDefinitionInterface, crd *apiextensionsv1.CustomResourceDefinition) error {
	old, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(ctx, crd, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if old.Annotations[contentHashAnnotation] == crd.Annotations[contentHashAnnotation] {
		return nil
	}
	upd := crd.DeepCopy()
	upd.ResourceVersion = old.ResourceVersion
	_, err = api.Update(ctx, upd, metav1.UpdateOptions{})
	return err
}

// waitEstablished waits until every named CRD is Established.
//
// The apiserver establishes a CRD only on an update event of its CRD
// informer that shows the names accepted and the CRD not Established
// (apiextensions-apiserver's crdHandler queues it to the establishing
// controller then, and at no other time). A control plane stopped between
// the naming controller's "Installing" and the establishing controller's
// update leaves the CRD so in etcd; after a restart the informer's initial
// list brings add events only, the naming controller has nothing to change,
// and the CRD would stay "Installing" for good. Changing an annotation makes
// the update event that queues it.
func waitEstablished(ctx context.Context, api typedapiextensionsv1.CustomResourceDefinitionInterface, names []string) error {
	nudged := map[string]time.Time{}
	began := time.Now()
	for _, name := range names {
		err := retry(ctx, func() error {
			crd, err := api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if crdCondition(crd, apiextensionsv1.Established) {
				return nil
			}
			last, ok := nudged[name]
			if !ok {
				last = began
			}
			if crdCondition(crd, apiextensionsv1.NamesAccepted) && time.Since(last) >= nudgeAfter {
				klog.InfoS("gateway API CRD not established: nudging the apiserver", "crd", name, "waited", time.Since(began).Round(time.Millisecond))
				if err := nudge(ctx, api, name); err != nil {
					return err
				}
				nudged[name] = time.Now()
			}
			return fmt.Errorf("CRD %s is not established yet: %s", name, crdConditionText(crd))
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", name, err)
		}
	}
	return nil
}

// nudge changes the CRD's nudge annotation.
func nudge(ctx context.Context, api typedapiextensionsv1.CustomResourceDefinitionInterface, name string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		establishNudgeAnnotation: time.Now().UTC().Format(time.RFC3339Nano)}}})
	if err != nil {
		return err
	}
	if _, err := api.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("nudge CRD %s: %w", name, err)
	}
	return nil
}

func crdCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

func crdConditionText(crd *apiextensionsv1.CustomResourceDefinition) string {
	s := ""
	for _, c := range crd.Status.Conditions {
		s += fmt.Sprintf("%s=%s (%s) ", c.Type, c.Status, c.Reason)
	}
	return s
}
