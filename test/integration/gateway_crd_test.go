package integration

import (
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

const httpRoutesCRD = "httproutes.gateway.networking.k8s.io"

// TestGatewayCRDStuckInstalling reproduces a cluster stopped between the
// apiserver's naming controller ("Installing") and its establishing
// controller: the CRD is left so in etcd, and the apiserver alone never
// establishes it after a restart. minik must.
func TestGatewayCRDStuckInstalling(t *testing.T) {
	h := newHarness(t)
	const profile = "gwcrd"
	h.ok(3*time.Minute, "start", "-p", profile, "--driver", "process")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	crds := crdClientFor(t, h.kubeconfig, profile)
	// Every status controller of the apiserver is done with the CRD: only
	// the establishing controller's update is then missing after the edit
	// below, as when the cluster stopped between its two updates.
	eventually(t, time.Minute, "httproutes CRD established and API approval checked", func() (bool, string) {
		crd, err := crds.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, httpRoutesCRD, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		var has []string
		for _, c := range crd.Status.Conditions {
			has = append(has, string(c.Type)+"="+string(c.Status))
		}
		return slices.Contains(has, "Established=True") && slices.Contains(has, "KubernetesAPIApprovalPolicyConformant=True"), strings.Join(has, " ")
	})
	h.ok(time.Minute, "stop", "-p", profile)

	setStoredCRDInstalling(t, ctx, h.home, httpRoutesCRD)

	h.ok(3*time.Minute, "start", "-p", profile)
	eventually(t, time.Minute, "httproutes CRD established after the restart", func() (bool, string) {
		return crdEstablished(ctx, crds, httpRoutesCRD)
	})
}

func crdClientFor(t *testing.T, kubeconfig, context string) apiextensions.Interface {
	t.Helper()
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: context},
	).ClientConfig()
	require.NoError(t, err)
	c, err := apiextensions.NewForConfig(rc)
	require.NoError(t, err)
	return c
}

func crdEstablished(ctx context.Context, c apiextensions.Interface, name string) (bool, string) {
	crd, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established {
			return cond.Status == apiextensionsv1.ConditionTrue, cond.Reason + ": " + cond.Message
		}
	}
	return false, "no Established condition"
}

// setStoredCRDInstalling opens the stopped cluster's etcd and writes the
// CRD's Established condition as the naming controller leaves it.
func setStoredCRDInstalling(t *testing.T, ctx context.Context, home, name string) {
	t.Helper()
	var dir string
	require.NoError(t, filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "etcd" {
			if _, err := os.Stat(filepath.Join(p, "member")); err == nil {
				dir = p
				return filepath.SkipAll
			}
		}
		return err
	}))
	require.NotEmpty(t, dir, "the stopped cluster's etcd folder under %s", home)

	ec := embed.NewConfig()
	ec.Dir = dir
	ec.LogLevel = "error"
	free := func() url.URL { return url.URL{Scheme: "http", Host: "127.0.0.1:" + freeTCPPort(t)} }
	ec.ListenClientUrls = []url.URL{free()}
	ec.AdvertiseClientUrls = ec.ListenClientUrls
	ec.ListenPeerUrls = []url.URL{free()}
	e, err := embed.StartEtcd(ec)
	require.NoError(t, err)
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		t.Fatal("etcd of the stopped cluster: not ready after 1m")
	}
	kv := v3client.New(e.Server)
	defer kv.Close()
	key := "/registry/apiextensions.k8s.io/customresourcedefinitions/" + name
	got, err := kv.Get(ctx, key)
	require.NoError(t, err)
	require.Len(t, got.Kvs, 1, "key %s", key)
	// Edited as a map: a round trip through the Go type would change other
	// fields, and the apiserver's status controllers would then update the
	// CRD (and so establish it) for their own reasons.
	var crd map[string]any
	require.NoError(t, json.Unmarshal(got.Kvs[0].Value, &crd), "CRDs are stored as JSON")
	status, _ := crd["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	found := false
	for _, c := range conds {
		if c, ok := c.(map[string]any); ok && c["type"] == string(apiextensionsv1.Established) {
			c["status"], c["reason"], c["message"] = "False", "Installing", "the initial names have been accepted"
			found = true
		}
	}
	require.True(t, found, "stored CRD has an Established condition: %v", status)
	data, err := json.Marshal(crd)
	require.NoError(t, err)
	_, err = kv.Put(ctx, key, string(data))
	require.NoError(t, err)
}

func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
