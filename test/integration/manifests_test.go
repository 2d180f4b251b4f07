package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

type manifestsState struct {
	Dir   string `json:"dir"`
	Files []struct {
		File    string   `json:"file"`
		Objects []string `json:"objects"`
		Errors  []string `json:"errors"`
	} `json:"files"`
}

// checkManifests drives a cluster's manifests folder as a user would.
func checkManifests(t *testing.T, h *harness, profile, dir string) {
	c := clientFor(t, h.kubeconfig, profile)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var st manifestsState
	require.NoError(t, json.Unmarshal([]byte(h.ok(time.Minute, "manifests", "-p", profile, "-o", "json")), &st))
	require.Equal(t, dir, st.Dir)
	write := func(name, data string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644))
	}
	cmData := func(ns, name string) (map[string]string, error) {
		cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return cm.Data, nil
	}
	// Within 2 s of a change (and some slack for a loaded CI machine).
	appears := func(what string, ok func() bool) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() (bool, string) { return ok(), "" })
	}

	write("app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: team}\ndata: {level: \"1\"}\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: \"1\"}\n")
	appears("the file's objects", func() bool {
		d, err := cmData("team", "settings")
		_, errExtra := cmData("default", "extra")
		return err == nil && d["level"] == "1" && errExtra == nil
	})

	// An edit changes what the file owns; a field set by someone else stays.
	cm, err := c.CoreV1().ConfigMaps("team").Get(ctx, "settings", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["mine"] = "kept"
	_, err = c.CoreV1().ConfigMaps("team").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	write("app.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: team}\ndata: {level: \"2\"}\n")
	appears("the edit, and the removed object pruned", func() bool {
		d, err := cmData("team", "settings")
		_, errExtra := cmData("default", "extra")
		return err == nil && d["level"] == "2" && d["mine"] == "kept" && errExtra != nil
	})

	// jsonnet with an import and external variables.
	write("lib.libsonnet", "{ cm(name, data):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: data } }")
	write("gen.jsonnet", "local lib = import 'lib.libsonnet';\n{ info: lib.cm('cluster-info', { cluster: std.extVar('cluster'), version: std.extVar('kubernetesVersion'), nodes: std.extVar('nodes') }) }")
	appears("the jsonnet file's object", func() bool {
		d, err := cmData("default", "cluster-info")
		return err == nil && d["cluster"] == profile && d["version"] == "v1.37.2" && d["nodes"] != ""
	})

	// A CRD and its custom resource in one file, the resource first.
	write("crd.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3}\n---\n"+
		"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n"+
		"spec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n"+
		"  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n")
	appears("the custom resource", func() bool {
		r := h.run(time.Minute, "kubectl", "-p", profile, "--", "get", "widget", "w1")
		return r.code == 0
	})

	// A broken file next to a good one: reported, the rest applied.
	write("broken.yaml", "kind: [broken")
	write("good.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n")
	appears("the good file applied", func() bool { _, err := cmData("default", "good"); return err == nil })
	eventually(t, 10*time.Second, "the broken file reported", func() (bool, string) {
		out := h.ok(time.Minute, "manifests", "-p", profile)
		return strings.Contains(out, "broken.yaml") && strings.Contains(out, "error: document 1:"), out
	})
	eventForIn(t, ctx, c, "kube-system", "ConfigMap", "minik-manifests", "ManifestFailed", "broken.yaml document 1:")

	// Removing a file deletes what it made, and only that.
	require.NoError(t, os.Remove(filepath.Join(dir, "gen.jsonnet")))
	appears("the removed file's object pruned", func() bool { _, err := cmData("default", "cluster-info"); return err != nil })
	_, err = cmData("team", "settings")
	require.NoError(t, err)
}

func countConfigMaps(t *testing.T, c kubernetes.Interface) int {
	t.Helper()
	list, err := c.CoreV1().ConfigMaps("").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	return len(list.Items)
}

func TestManifestsFolder(t *testing.T) {
	h := newHarness(t)
	const profile = "mf"
	h.ok(3*time.Minute, "start", "-p", profile)
	dir := filepath.Join(h.home, "profiles", profile, "manifests")
	checkManifests(t, h, profile, dir)

	// Applied again after a stop and start, with nothing duplicated.
	c := clientFor(t, h.kubeconfig, profile)
	before := countConfigMaps(t, c)
	h.ok(2*time.Minute, "stop", "-p", profile)
	h.ok(3*time.Minute, "start", "-p", profile)
	c = clientFor(t, h.kubeconfig, profile)
	time.Sleep(3 * time.Second)
	require.Equal(t, before, countConfigMaps(t, c))
	out := h.ok(time.Minute, "manifests", "-p", profile)
	require.Contains(t, out, "app.yaml")
	require.Contains(t, out, "ConfigMap team/settings")

	// Bad input.
	require.Contains(t, h.fails("start", "-p", "mf2", "--manifests", filepath.Join(dir, "app.yaml")), "invalid --manifests")
}

func TestManifestsFolderDocker(t *testing.T) {
	requireEngine(t)
	keepNodeImages(t)
	h := newHarness(t)
	h.env = slices.DeleteFunc(h.env, func(e string) bool { return strings.HasPrefix(e, "MINIK_DRIVER=") })
	const profile = "mfd"
	removeCluster(t, h, profile)
	// A folder of the user's, outside minik's home.
	dir := t.TempDir()
	h.ok(3*time.Minute, "start", "-p", profile, "--driver", "docker", "--manifests", dir)
	checkManifests(t, h, profile, dir)
}
