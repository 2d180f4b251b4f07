package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/auth/rbac/reconciliation"
	"k8s.io/klog/v2"
	schedulingv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
)

// The upstream post-start hooks that bootstrap RBAC policy and the system
// PriorityClasses first wait a whole second (wait.Poll, not immediate)
// before they try, and /readyz waits for both: half of a local cluster's
// start. minik disables them and runs hooks of the same names that write
// the same objects (the upstream bootstrap policy, reconciled with the
// upstream reconciler) at once, retrying every bootstrapRetry.
const (
	rbacBootstrapHook     = "rbac/bootstrap-roles"
	priorityBootstrapHook = "scheduling/bootstrap-system-priority-classes"
	bootstrapRetry        = 50 * time.Millisecond
	bootstrapTimeout      = 30 * time.Second
	bootstrapWorkers      = 8
)

// replaceBootstrapHooks disables the upstream hooks on the kube-apiserver's
// config; addBootstrapHooks adds minik's to the server that runs hooks.
// The servers' configs are shallow copies of one another: the set is
// replaced, not changed, so that only the kube-apiserver's loses the hooks.
func replaceBootstrapHooks(c *genericapiserver.Config) {
	c.DisabledPostStartHooks = sets.NewString(c.DisabledPostStartHooks.UnsortedList()...).Insert(rbacBootstrapHook, priorityBootstrapHook)
}

func addBootstrapHooks(s *genericapiserver.GenericAPIServer) error {
	for name, ensure := range map[string]func(context.Context, kubernetes.Interface) error{
		rbacBootstrapHook:     ensureBootstrapPolicy,
		priorityBootstrapHook: ensureSystemPriorityClasses,
	} {
		err := s.AddPostStartHook(name, func(hc genericapiserver.PostStartHookContext) error {
			client, err := kubernetes.NewForConfig(hc.LoopbackClientConfig)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			var last error
			err = wait.PollUntilContextTimeout(hc, bootstrapRetry, bootstrapTimeout, true, func(ctx context.Context) (bool, error) {
				last = ensure(ctx, client)
				return last == nil, nil
			})
			if err != nil {
				return fmt.Errorf("%s: %w (last error: %v)", name, err, last)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("add post-start hook %s: %w", name, err)
		}
	}
	return nil
}

// ensureBootstrapPolicy creates or reconciles every role and binding of the
// upstream bootstrap policy, as the kube-apiserver does at every start.
// The upstream hook also migrates roles of clusters made before
// Kubernetes 1.9; a minik cluster never was one.
//
// The objects are independent, so they are reconciled bootstrapWorkers at
// a time: about 250 requests to the in-process apiserver.
func ensureBootstrapPolicy(_ context.Context, client kubernetes.Interface) error {
	var tasks []func() error
	for _, r := range append(bootstrappolicy.ClusterRoles(), bootstrappolicy.ControllerRoles()...) {
		tasks = append(tasks, func() error {
			return reconcileRole(reconciliation.ClusterRoleRuleOwner{ClusterRole: &r},
				reconciliation.ClusterRoleModifier{Client: client.RbacV1().ClusterRoles()})
		})
	}
	for _, b := range append(bootstrappolicy.ClusterRoleBindings(), bootstrappolicy.ControllerRoleBindings()...) {
		tasks = append(tasks, func() error {
			return reconcileBinding(reconciliation.ClusterRoleBindingAdapter{ClusterRoleBinding: &b},
				reconciliation.ClusterRoleBindingClientAdapter{Client: client.RbacV1().ClusterRoleBindings()})
		})
	}
	for _, roles := range bootstrappolicy.NamespaceRoles() {
		for _, r := range roles {
			tasks = append(tasks, func() error {
				return reconcileRole(reconciliation.RoleRuleOwner{Role: &r},
					reconciliation.RoleModifier{Client: client.RbacV1(), NamespaceClient: client.CoreV1().Namespaces()})
			})
		}
	}
	for _, bindings := range bootstrappolicy.NamespaceRoleBindings() {
		for _, b := range bindings {
			tasks = append(tasks, func() error {
				return reconcileBinding(reconciliation.RoleBindingAdapter{RoleBinding: &b},
					reconciliation.RoleBindingClientAdapter{Client: client.RbacV1(), NamespaceClient: client.CoreV1().Namespaces()})
			})
		}
	}
	errs := make([]error, len(tasks))
	var g errgroup.Group
	g.SetLimit(bootstrapWorkers)
	for i, task := range tasks {
		g.Go(func() error {
			errs[i] = task()
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reconcile the bootstrap RBAC policy: %w", err)
	}
	klog.V(2).InfoS("bootstrap RBAC policy reconciled")
	return nil
}

func reconcileRole(role reconciliation.RuleOwner, client reconciliation.RuleOwnerModifier) error {
	o := reconciliation.ReconcileRoleOptions{Role: role, Client: client, Confirm: true}
	result, err := o.Run()
	if err != nil {
		return fmt.Errorf("role %s/%s: %w", role.GetNamespace(), role.GetName(), err)
	}
	if result.Protected && result.Operation != reconciliation.ReconcileNone {
		klog.InfoS("skipped a reconcile-protected role with missing permissions", "namespace", role.GetNamespace(), "name", role.GetName())
	}
	return nil
}

func reconcileBinding(binding reconciliation.RoleBinding, client reconciliation.RoleBindingModifier) error {
	o := reconciliation.ReconcileRoleBindingOptions{RoleBinding: binding, Client: client, Confirm: true}
	result, err := o.Run()
	if err != nil {
		return fmt.Errorf("binding %s/%s: %w", binding.GetNamespace(), binding.GetName(), err)
	}
	if result.Protected && result.Operation != reconciliation.ReconcileNone {
		klog.InfoS("skipped a reconcile-protected binding with missing subjects", "namespace", binding.GetNamespace(), "name", binding.GetName())
	}
	return nil
}

// ensureSystemPriorityClasses creates system-node-critical and
// system-cluster-critical unless they exist.
func ensureSystemPriorityClasses(ctx context.Context, client kubernetes.Interface) error {
	for _, pc := range schedulingv1.SystemPriorityClasses() {
		_, err := client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create PriorityClass %s: %w", pc.Name, err)
		}
	}
	return nil
}
