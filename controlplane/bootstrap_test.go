package controlplane

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	schedulingv1 "k8s.io/kubernetes/pkg/apis/scheduling/v1"
	"k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac/bootstrappolicy"
)

// The bootstrap hooks write exactly the upstream bootstrap policy, and a
// second run (a restart) changes nothing.
func TestEnsureBootstrapPolicy(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	require.NoError(t, ensureBootstrapPolicy(ctx, client))

	roles, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	want := append(bootstrappolicy.ClusterRoles(), bootstrappolicy.ControllerRoles()...)
	require.Len(t, roles.Items, len(want))
	for _, w := range want {
		got, err := client.RbacV1().ClusterRoles().Get(ctx, w.Name, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, w.Rules, got.Rules, w.Name)
		require.Equal(t, w.AggregationRule, got.AggregationRule, w.Name)
		require.Equal(t, "true", got.Annotations["rbac.authorization.kubernetes.io/autoupdate"], w.Name)
	}
	bindings, err := client.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, bindings.Items, len(bootstrappolicy.ClusterRoleBindings())+len(bootstrappolicy.ControllerRoleBindings()))
	for ns, want := range bootstrappolicy.NamespaceRoles() {
		got, err := client.RbacV1().Roles(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Len(t, got.Items, len(want), ns)
	}
	for ns, want := range bootstrappolicy.NamespaceRoleBindings() {
		got, err := client.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		require.Len(t, got.Items, len(want), ns)
	}

	before := len(client.Actions())
	require.NoError(t, ensureBootstrapPolicy(ctx, client))
	for _, a := range client.Actions()[before:] {
		require.Equal(t, "get", a.GetVerb(), "a restart only reads: %v", a)
	}
}

func TestEnsureSystemPriorityClasses(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	require.NoError(t, ensureSystemPriorityClasses(ctx, client))
	require.NoError(t, ensureSystemPriorityClasses(ctx, client), "existing classes are fine")
	for _, want := range schedulingv1.SystemPriorityClasses() {
		got, err := client.SchedulingV1().PriorityClasses().Get(ctx, want.Name, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, want.Value, got.Value)
	}
}
