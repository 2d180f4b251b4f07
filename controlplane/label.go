package controlplane

import (
	"context"
	"fmt"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"minik.dev/minik/nodeconfig"
)

// ControlPlaneLabel marks control-plane nodes, as kubeadm does.
const ControlPlaneLabel = nodeconfig.ControlPlaneLabel

// controllerManagerBinding lets kube-controller-manager's own identity do
// what its per-controller service accounts would: with
// --use-service-account-credentials=false every controller shares it, which
// makes the default ServiceAccount appear seconds sooner.
const controllerManagerBinding = "minik:kube-controller-manager"

func grantControllerManager(ctx context.Context, cfg *nodeconfig.Config) error {
	client, err := adminClient(cfg)
	if err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: controllerManagerBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user.KubeControllerManager}},
	}
	_, err = client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("grant kube-controller-manager: %w", err)
	}
	// Every node answers on its NodePorts, as kube-proxy would, so nodes
	// read what kube-proxy reads (EndpointSlices above all).
	crb = &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: nodeProxierBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-proxier"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: user.NodesGroup}},
	}
	_, err = client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("grant nodes the node-proxier role: %w", err)
	}
	return nil
}

const nodeProxierBinding = "minik:node-proxier"

func adminClient(cfg *nodeconfig.Config) (kubernetes.Interface, error) {
	rc, err := adminConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	return client, nil
}

// adminConfig is the in-process controllers' client config.
func adminConfig(cfg *nodeconfig.Config) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.ControlPlane.AdminKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load admin kubeconfig: %w", err)
	}
	// In-process controllers (volumes, load balancers) act for hundreds of
	// objects a second in scale tests; client-go's default is 5 per second.
	rc.QPS, rc.Burst = 500, 1000
	return rc, nil
}

// labelControlPlaneNode sets the control-plane role label on this node once
// it has registered: NodeRestriction forbids a kubelet to set it itself.
func labelControlPlaneNode(ctx context.Context, cfg *nodeconfig.Config) {
	client, err := adminClient(cfg)
	if err != nil {
		klog.ErrorS(err, "label control-plane node")
		return
	}
	patch := []byte(`{"metadata":{"labels":{"` + ControlPlaneLabel + `":""}}}`)
	for {
		_, err := client.CoreV1().Nodes().Patch(ctx, cfg.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "label control-plane node")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
