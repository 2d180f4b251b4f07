package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	"minik.dev/minik/gateway"
)

func crdWith(name string, conds ...apiextensionsv1.CustomResourceDefinitionCondition) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{Conditions: conds}}
}

var (
	namesAccepted = apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionTrue}
	installing    = apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionFalse, Reason: "Installing"}
	established   = apiextensionsv1.CustomResourceDefinitionCondition{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}
)

// TestWaitEstablishedNudgesAStuckCRD plays the apiserver after a restart
// that found a CRD "Installing": it establishes the CRD only on an update.
func TestWaitEstablishedNudgesAStuckCRD(t *testing.T) {
	defer func(d time.Duration) { nudgeAfter = d }(nudgeAfter)
	nudgeAfter = 50 * time.Millisecond
	client := fake.NewClientset(crdWith("stuck.example.com", namesAccepted, installing), crdWith("fine.example.com", namesAccepted, established))
	gvr := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	var patched []string
	client.PrependReactor("patch", "customresourcedefinitions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		name := a.(clienttesting.PatchAction).GetName()
		patched = append(patched, name)
		// The update event queues the CRD to the establishing controller.
		require.NoError(t, client.Tracker().Update(gvr, crdWith(name, namesAccepted, established), ""))
		return false, nil, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, waitEstablished(ctx, client.ApiextensionsV1().CustomResourceDefinitions(), []string{"fine.example.com", "stuck.example.com"}))
	assert.Equal(t, []string{"stuck.example.com"}, patched)
	got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "stuck.example.com", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, got.Annotations[establishNudgeAnnotation])
}

// TestInstallCRDsWritesOnlyWhatChanged: a restart with the same bundle
// writes no CRD; a CRD of other content is replaced.
func TestInstallCRDsWritesOnlyWhatChanged(t *testing.T) {
	crds, err := gateway.CRDs()
	require.NoError(t, err)
	var objs []runtime.Object
	for _, crd := range crds {
		require.NoError(t, setContentHash(crd))
		crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{namesAccepted, established}
		objs = append(objs, crd)
	}
	// One CRD as an older minik wrote it: no hash.
	delete(crds[0].Annotations, contentHashAnnotation)
	client := fake.NewClientset(objs...)
	// The apiserver keeps a CRD's status across spec updates; the fake does not.
	client.PrependReactor("update", "customresourcedefinitions", func(a clienttesting.Action) (bool, runtime.Object, error) {
		crd := a.(clienttesting.UpdateAction).GetObject().(*apiextensionsv1.CustomResourceDefinition)
		crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{namesAccepted, established}
		return false, nil, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, installCRDs(ctx, client))
	var writes []string
	for _, a := range client.Actions() {
		if a.GetVerb() != "get" {
			writes = append(writes, a.GetVerb()+" "+a.(interface{ GetObject() runtime.Object }).GetObject().(*apiextensionsv1.CustomResourceDefinition).Name)
		}
	}
	assert.Equal(t, []string{"update " + crds[0].Name}, writes)
	client.ClearActions()
	require.NoError(t, installCRDs(ctx, client))
	for _, a := range client.Actions() {
		assert.Equal(t, "get", a.GetVerb(), "a second install writes nothing")
	}
}
