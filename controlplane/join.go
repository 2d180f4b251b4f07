package controlplane

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/workqueue"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/klog/v2"

	"minik.dev/minik/egress"
	"minik.dev/minik/nodeconfig"
	"minik.dev/minik/pki"
)

// runJoin prepares the cluster for nodes that join from other machines
// (minik-node join), as kubeadm's bootstrap-token phase does: the
// cluster-info ConfigMap that joining nodes discover the CA from, the RBAC
// that lets a bootstrap token ask for a node client certificate (approved
// and signed by the controller-manager's own controllers), and an approver
// for kubelet serving certificates, which upstream leaves to the cluster.
//
// The apiserver reaches joined nodes (logs, exec, metrics) through the
// egress proxy, which allows their addresses while they are in the cluster.
func runJoin(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface, proxy *egress.Proxy) {
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		if err := ensureJoinRBAC(ctx, client); err != nil {
			klog.ErrorS(err, "grant joining nodes")
			return false, nil
		}
		if err := ensureClusterInfo(ctx, cfg, client); err != nil {
			klog.ErrorS(err, "publish cluster-info")
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return
	}
	if err := runServingApprover(ctx, client, proxy); err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "run the kubelet serving certificate approver")
	}
}

const (
	joinCheckRole    = "minik:node-join-check"
	clusterInfoRole  = "minik:bootstrap-signer-clusterinfo"
	bootstrapperRole = "system:node-bootstrapper"
	nodeClientRole   = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	selfClientRole   = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
)

func ensureJoinRBAC(ctx context.Context, client kubernetes.Interface) error {
	group := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: nodeconfig.JoinTokenGroup}
	nodes := rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: user.NodesGroup}
	// A joining node reads Nodes before it asks for a certificate, so that
	// a name in use is refused with nothing left behind.
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: joinCheckRole},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}},
	}
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
	}
	bindings := []struct {
		name, role string
		subject    rbacv1.Subject
	}{
		{"minik:node-bootstrapper", bootstrapperRole, group},
		{"minik:node-autoapprove-bootstrap", nodeClientRole, group},
		{"minik:node-autoapprove-certificate-rotation", selfClientRole, nodes},
		{"minik:node-join-check", joinCheckRole, group},
	}
	for _, b := range bindings {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{b.subject},
		}
		if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ClusterRoleBinding %s: %w", b.name, err)
		}
	}
	return nil
}

// ensureClusterInfo publishes the kubeconfig that names the apiserver's
// address for other machines and the cluster CA; the bootstrapsigner
// controller signs it with every bootstrap token, which is how a joining
// node knows the server holds its token before it trusts the CA.
func ensureClusterInfo(ctx context.Context, cfg *nodeconfig.Config, client kubernetes.Interface) error {
	ca, err := os.ReadFile(pki.Layout(cfg.PKIDir).CACert)
	if err != nil {
		return fmt.Errorf("read cluster CA: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[cfg.Cluster] = &clientcmdapi.Cluster{
		Server:                   cfg.ControlPlane.JoinServer,
		CertificateAuthorityData: ca,
	}
	kc.Contexts[cfg.Cluster] = &clientcmdapi.Context{Cluster: cfg.Cluster}
	kc.CurrentContext = cfg.Cluster
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("encode cluster-info: %w", err)
	}
	cms := client.CoreV1().ConfigMaps(metav1.NamespacePublic)
	cm, err := cms.Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: metav1.NamespacePublic},
			Data:       map[string]string{bootstrapapi.KubeConfigKey: string(data)},
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cluster-info: %w", err)
		}
	case err != nil:
		return fmt.Errorf("get cluster-info: %w", err)
	case cm.Data[bootstrapapi.KubeConfigKey] != string(data):
		// Only the kubeconfig changes; the signatures beside it are the
		// bootstrapsigner's, which signs the new content again.
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[bootstrapapi.KubeConfigKey] = string(data)
		if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update cluster-info: %w", err)
		}
	}
	// Anyone may read cluster-info: it holds only public data, and it is
	// what a joining node reads before it trusts anything.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: clusterInfoRole, Namespace: metav1.NamespacePublic},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{bootstrapapi.ConfigMapClusterInfo}, Verbs: []string{"get"}}},
	}
	if _, err := client.RbacV1().Roles(metav1.NamespacePublic).Create(ctx, role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create Role %s: %w", role.Name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterInfoRole, Namespace: metav1.NamespacePublic},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: clusterInfoRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user.Anonymous}},
	}
	if _, err := client.RbacV1().RoleBindings(metav1.NamespacePublic).Create(ctx, rb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create RoleBinding %s: %w", rb.Name, err)
	}
	return nil
}

// runServingApprover approves kubelet serving certificate requests whose
// names and addresses are those of the requesting node's Node object, and
// denies those that ask for more. A request from a node not registered, or
// not yet reporting its addresses, waits for them.
func runServingApprover(ctx context.Context, client kubernetes.Interface, proxy *egress.Proxy) error {
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	csrs := factory.Certificates().V1().CertificateSigningRequests()
	nodes := factory.Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && csr.Spec.SignerName == certificatesv1.KubeletServingSignerName {
			queue.Add(csr.Name)
		}
	}
	if _, err := csrs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("watch CertificateSigningRequests: %w", err)
	}
	// A Node that registers releases the requests waiting for it.
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			allowJoined(proxy, nil, obj)
			list, _ := csrs.Lister().List(labels.Everything())
			for _, c := range list {
				enqueue(c)
			}
		},
		UpdateFunc: func(old, obj any) {
			allowJoined(proxy, old, obj)
			// A node's first status report brings its addresses, which
			// the requests waiting for them are checked against.
			if o, ok := old.(*corev1.Node); ok && len(o.Status.Addresses) == 0 {
				if n, ok := obj.(*corev1.Node); ok && len(n.Status.Addresses) > 0 {
					list, _ := csrs.Lister().List(labels.Everything())
					for _, c := range list {
						enqueue(c)
					}
				}
			}
		},
		DeleteFunc: func(obj any) { allowJoined(proxy, obj, nil) },
	}); err != nil {
		return fmt.Errorf("watch Nodes: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), csrs.Informer().HasSynced, nodes.Informer().HasSynced) {
		return ctx.Err()
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	for {
		name, quit := queue.Get()
		if quit {
			return nil
		}
		err := func() error {
			defer queue.Done(name)
			csr, err := csrs.Lister().Get(name)
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if decided(csr) {
				return nil
			}
			node, err := nodes.Lister().Get(servingCSRNode(csr))
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(node.Status.Addresses) == 0 {
				// Registered, not reported yet: deciding now would deny
				// the node's own addresses. Its first report requeues.
				return nil
			}
			csr = csr.DeepCopy()
			cond := certificatesv1.CertificateSigningRequestCondition{
				Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
				Reason: "MinikServingApprove", Message: "the names and addresses are the node's own",
			}
			if err := checkServingCSR(csr, node); err != nil {
				cond = certificatesv1.CertificateSigningRequestCondition{
					Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue,
					Reason: "MinikServingDeny", Message: err.Error(),
				}
			}
			cond.LastUpdateTime = metav1.Now()
			csr.Status.Conditions = append(csr.Status.Conditions, cond)
			_, err = client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("decide on CertificateSigningRequest %s: %w", csr.Name, err)
			}
			klog.InfoS("kubelet serving certificate request", "csr", csr.Name, "node", node.Name, "decision", cond.Type, "reason", cond.Message)
			return nil
		}()
		if err != nil {
			klog.ErrorS(err, "approve kubelet serving certificate", "csr", name)
			queue.AddRateLimited(name)
		} else {
			queue.Forget(name)
		}
	}
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	return slices.ContainsFunc(csr.Status.Conditions, func(c certificatesv1.CertificateSigningRequestCondition) bool {
		return c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied
	})
}

// servingCSRNode is the node a serving request comes from ("" when the
// requester is not a node).
func servingCSRNode(csr *certificatesv1.CertificateSigningRequest) string {
	name, ok := cutNodeUser(csr.Spec.Username)
	if !ok {
		return ""
	}
	return name
}

func cutNodeUser(u string) (string, bool) {
	const prefix = "system:node:"
	if len(u) <= len(prefix) || u[:len(prefix)] != prefix {
		return "", false
	}
	return u[len(prefix):], true
}

// checkServingCSR says why a kubelet serving request must be denied: it
// must come from the node it names, for server use only, and name only
// that node's name and addresses.
func checkServingCSR(csr *certificatesv1.CertificateSigningRequest, node *corev1.Node) error {
	if !slices.Contains(csr.Spec.Groups, user.NodesGroup) {
		return fmt.Errorf("requester %s is not in group %s", csr.Spec.Username, user.NodesGroup)
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return errors.New("the request holds no PEM certificate request")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("parse the certificate request: %w", err)
	}
	if req.Subject.CommonName != csr.Spec.Username {
		return fmt.Errorf("common name %q is not the requester %q", req.Subject.CommonName, csr.Spec.Username)
	}
	if !slices.Equal(req.Subject.Organization, []string{user.NodesGroup}) {
		return fmt.Errorf("organization %v is not [%s]", req.Subject.Organization, user.NodesGroup)
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth:
		default:
			return fmt.Errorf("usage %q is not for a kubelet serving certificate", u)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		return errors.New("the request lacks usage server auth")
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return errors.New("the request names email addresses or URIs")
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return errors.New("the request names no DNS name or IP address")
	}
	names := []string{node.Name}
	var ips []net.IP
	for _, a := range node.Status.Addresses {
		switch a.Type {
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			names = append(names, a.Address)
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			ips = append(ips, net.ParseIP(a.Address))
		}
	}
	for _, n := range req.DNSNames {
		if !slices.Contains(names, n) {
			return fmt.Errorf("DNS name %q is not one of node %s's", n, node.Name)
		}
	}
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(ips, ip.Equal) {
			return fmt.Errorf("IP address %s is not one of node %s's", ip, node.Name)
		}
	}
	return nil
}

// allowJoined keeps the egress proxy's allowed hosts in step with the
// InternalIPs of joined Nodes as a Node goes from old to obj (either nil).
func allowJoined(proxy *egress.Proxy, old, obj any) {
	for _, ip := range joinedIPs(old) {
		proxy.ForgetHost(ip)
	}
	for _, ip := range joinedIPs(obj) {
		proxy.AllowHost(ip)
	}
}

func joinedIPs(obj any) []net.IP {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok || n.Labels[nodeconfig.JoinedLabel] != "true" {
		return nil
	}
	var ips []net.IP
	for _, a := range n.Status.Addresses {
		if ip := net.ParseIP(a.Address); a.Type == corev1.NodeInternalIP && ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}
