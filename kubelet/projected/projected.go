// Package projected gives a node's pods the credentials that projected
// volumes carry and the cluster issues: the trust anchors of
// ClusterTrustBundles and pod certificates. It drives the kubelet's own
// managers, so a pod's files hold what a kubelet would write, and it
// starts their watches only when a pod first asks, so a node whose pods
// use neither pays nothing.
package projected

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/kubernetes/pkg/kubelet/clustertrustbundle"
	"k8s.io/kubernetes/pkg/kubelet/podcertificate"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// bundleCacheSize is how many normalized trust bundles are kept, as the
// kubelet sizes its cache: two per pod of a full node.
const bundleCacheSize = 2 * 110

// Sources resolves the clusterTrustBundle and podCertificate sources of
// one node's projected volumes.
type Sources struct {
	// ctx bounds the watches started on first use: the node's life.
	ctx      context.Context
	client   kubernetes.Interface
	node     string
	recorder record.EventRecorder
	bundles  clustertrustbundle.Manager

	mu sync.Mutex
	// pods are the pods that asked for a pod certificate, as last seen.
	pods  map[types.UID]*corev1.Pod
	certs *podcertificate.IssuingManager
}

// New resolves sources for node's pods with the node's client until ctx
// is done.
func New(ctx context.Context, client kubernetes.Interface, node string, recorder record.EventRecorder) *Sources {
	return &Sources{
		ctx:      ctx,
		client:   client,
		node:     node,
		recorder: recorder,
		bundles:  clustertrustbundle.NewLazyInformerManager(ctx, client, bundleCacheSize),
		pods:     map[types.UID]*corev1.Pod{},
	}
}

// TrustBundle is the PEM trust anchors a clusterTrustBundle source
// selects: one bundle by name, or every bundle of a signer that its label
// selector matches (a nil selector matches none, an empty one all). An
// optional source that selects nothing is empty; a required one is an
// error, and the pod must not start.
func (s *Sources) TrustBundle(ctx context.Context, src *corev1.ClusterTrustBundleProjection) ([]byte, error) {
	optional := ptr.Deref(src.Optional, false)
	switch {
	case src.Name != nil:
		return s.bundles.GetTrustAnchorsByName(ctx, *src.Name, optional)
	case src.SignerName != nil && src.LabelSelector == nil:
		// A nil selector matches nothing. Answered here because the
		// kubelet's manager caches by the selector's string, which is ""
		// for both nil and empty (everything): after a pod asked with an
		// empty selector, it would answer a nil one with every bundle.
		if optional {
			return []byte{}, nil
		}
		return nil, fmt.Errorf("signer %q with no label selector matches no ClusterTrustBundle", *src.SignerName)
	case src.SignerName != nil:
		return s.bundles.GetTrustAnchorsBySigner(ctx, *src.SignerName, src.LabelSelector, optional)
	}
	return nil, fmt.Errorf("a clusterTrustBundle source needs a name or a signerName")
}

// PodCertificate is the private key and certificate chain (both PEM) of
// the podCertificate source at index of pod's projected volume. The
// first call for a pod asks for its certificates; until the signer
// issues one, it is an error and the caller asks again later.
func (s *Sources) PodCertificate(ctx context.Context, pod *corev1.Pod, volume string, index int) (key, chain []byte, err error) {
	s.mu.Lock()
	_, tracked := s.pods[pod.UID]
	s.pods[pod.UID] = pod
	if s.certs == nil {
		s.certs = s.startCertificates()
	}
	certs := s.certs
	s.mu.Unlock()
	if !tracked {
		certs.TrackPod(ctx, pod)
	}
	return certs.GetPodCertificateCredentialBundle(ctx, pod.Namespace, pod.Name, string(pod.UID), volume, index)
}

// Ready is nil when every clusterTrustBundle and podCertificate source of
// pod's projected volumes can be written now, else why one cannot, as the
// kubelet's volume set-up fails: a runtime that writes no files (sim)
// holds the pod's containers back until then.
func (s *Sources) Ready(ctx context.Context, pod *corev1.Pod) error {
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for i := range v.Projected.Sources {
			src := &v.Projected.Sources[i]
			var err error
			switch {
			case src.ClusterTrustBundle != nil:
				_, err = s.TrustBundle(ctx, src.ClusterTrustBundle)
			case src.PodCertificate != nil:
				_, _, err = s.PodCertificate(ctx, pod, v.Name, i)
			}
			if err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
	}
	return nil
}

// ForgetPod drops what was issued for a pod that is gone.
func (s *Sources) ForgetPod(ctx context.Context, uid types.UID) {
	s.mu.Lock()
	pod, ok := s.pods[uid]
	delete(s.pods, uid)
	certs := s.certs
	s.mu.Unlock()
	if ok && certs != nil {
		certs.ForgetPod(ctx, pod)
	}
}

// startCertificates starts the kubelet's pod certificate manager, which
// watches this node's PodCertificateRequests (a node may list only its
// own) and its Node (whose UID each request names).
func (s *Sources) startCertificates() *podcertificate.IssuingManager {
	onNode := func(field string) informers.SharedInformerOption {
		return informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector(field, s.node).String()
		})
	}
	requests := informers.NewSharedInformerFactoryWithOptions(s.client, 0, onNode("spec.nodeName"))
	nodes := informers.NewSharedInformerFactoryWithOptions(s.client, 0, onNode("metadata.name"))
	m := podcertificate.NewIssuingManager(s.client, podSet{s}, s.recorder,
		requests.Certificates().V1().PodCertificateRequests(), nodes.Core().V1().Nodes(),
		types.NodeName(s.node), clock.RealClock{})
	requests.Start(s.ctx.Done())
	nodes.Start(s.ctx.Done())
	go m.Run(s.ctx)
	return m
}

// podSet is the pod manager the certificate manager asks about pods: the
// pods that asked for certificates.
type podSet struct{ s *Sources }

func (p podSet) GetPodByUID(uid types.UID) (*corev1.Pod, bool) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	pod, ok := p.s.pods[uid]
	return pod, ok
}

func (p podSet) GetPods() []*corev1.Pod {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.s.pods))
	for _, pod := range p.s.pods {
		out = append(out, pod)
	}
	return out
}
