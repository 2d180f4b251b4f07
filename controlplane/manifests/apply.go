package manifests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"minik.dev/minik/nodeconfig"
)

// Timings of the folder's watch.
const (
	// poll is how often the folder is read; a change applies within it
	// plus the apply's own time.
	poll = 500 * time.Millisecond
	// retry is how often a folder with failed objects is applied again.
	retry = 5 * time.Second
	// establishWait bounds the wait for a CustomResourceDefinition.
	establishWait = 10 * time.Second
)

// Options configure the folder's applier.
type Options struct {
	Dir    string
	Config *rest.Config
	// ExtVars are jsonnet's external variables.
	ExtVars map[string]string
}

type applier struct {
	o        Options
	kube     kubernetes.Interface
	dyn      dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	recorder record.EventRecorder
}

// Run applies the folder at start and after every change until ctx is done.
func Run(ctx context.Context, o Options) error {
	if err := os.MkdirAll(o.Dir, 0o755); err != nil && !os.IsExist(err) {
		klog.V(2).InfoS("manifests folder", "dir", o.Dir, "err", err)
	}
	kube, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(o.Config)
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a := &applier{
		o: o, kube: kube, dyn: dyn,
		mapper:   restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery())),
		recorder: broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "minik-manifests"}),
	}
	// The node count is an external variable of jsonnet files.
	factory := informers.NewSharedInformerFactory(kube, 0)
	nodes := factory.Core().V1().Nodes().Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	factory.WaitForCacheSync(ctx.Done())
	t := time.NewTicker(poll)
	defer t.Stop()
	applied, lastTry := "", time.Time{}
	failed := false
	for {
		vars := map[string]string{}
		for k, v := range o.ExtVars {
			vars[k] = v
		}
		if list, err := nodes.List(labels.Everything()); err == nil {
			vars["nodes"] = strconv.Itoa(len(list))
		}
		f, err := load(o.Dir, vars)
		switch {
		case err != nil:
			klog.V(2).InfoS("read manifests", "err", err)
		case f.fingerprint != applied || (failed && time.Since(lastTry) > retry):
			lastTry = time.Now()
			failed, err = a.apply(ctx, f)
			if err != nil {
				klog.ErrorS(err, "apply manifests")
				failed = true
			} else {
				applied = f.fingerprint
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// apply applies every object of the folder, then prunes what the inventory
// holds and the folder no longer does, and records the result. failed says
// whether any object is to be tried again.
func (a *applier) apply(ctx context.Context, f folder) (failed bool, err error) {
	cm, err := a.record(ctx)
	if err != nil {
		return true, err
	}
	var previous []nodeconfig.ManifestObject
	_ = json.Unmarshal([]byte(cm.Data[nodeconfig.ManifestsInventoryKey]), &previous)

	now := time.Now().UTC().Truncate(time.Second)
	status := map[string]*nodeconfig.ManifestFile{}
	for file, problems := range f.files {
		status[file] = &nodeconfig.ManifestFile{File: file, AppliedAt: now, Errors: problems}
		for _, p := range problems {
			a.recorder.Eventf(cm, corev1.EventTypeWarning, "ManifestFailed", "%s %s", file, p)
		}
	}
	var inventory []nodeconfig.ManifestObject
	seen := map[string]bool{}
	for _, d := range f.docs {
		st := status[d.file]
		ref, err := a.applyOne(ctx, d.obj)
		if ref.Kind == "" {
			ref = objectOf(d.obj)
		}
		ref.File = d.file
		st.Objects = append(st.Objects, describe(ref))
		if err != nil {
			failed = true
			msg := fmt.Sprintf("document %d (%s): %s", d.index, describe(ref), firstLine(err.Error()))
			st.Errors = append(st.Errors, msg)
			a.recorder.Eventf(cm, corev1.EventTypeWarning, "ManifestFailed", "%s %s", d.file, msg)
		}
		// Even a failed object stays in the inventory: a removed file
		// prunes it once it exists.
		if !seen[key(ref)] {
			seen[key(ref)] = true
			inventory = append(inventory, ref)
		}
	}
	// Objects of files that did not parse are kept, not pruned.
	for _, prev := range previous {
		if problems := f.files[prev.File]; len(problems) > 0 && !seen[key(prev)] {
			seen[key(prev)] = true
			inventory = append(inventory, prev)
		}
	}
	for _, prev := range previous {
		if seen[key(prev)] {
			continue
		}
		if err := a.prune(ctx, prev); err != nil {
			failed = true
			inventory = append(inventory, prev)
			a.recorder.Eventf(cm, corev1.EventTypeWarning, "PruneFailed", "%s: %s", describe(prev), firstLine(err.Error()))
			continue
		}
		a.recorder.Eventf(cm, corev1.EventTypeNormal, "Pruned", "%s, removed from %s", describe(prev), prev.File)
	}
	files := make([]nodeconfig.ManifestFile, 0, len(status))
	for _, st := range status {
		files = append(files, *st)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].File < files[j].File })
	if err := a.save(ctx, cm, inventory, files); err != nil {
		return true, err
	}
	if !failed {
		a.recorder.Eventf(cm, corev1.EventTypeNormal, "Applied", "applied %d objects of %d files", len(f.docs), len(files))
	}
	return failed, nil
}

// applyOne server-side applies one object, waiting for a
// CustomResourceDefinition to be Established so the objects after it
// can be applied.
func (a *applier) applyOne(ctx context.Context, obj *unstructured.Unstructured) (nodeconfig.ManifestObject, error) {
	ref := objectOf(obj)
	mapping, err := a.mapping(obj.GroupVersionKind())
	if err != nil {
		return ref, err
	}
	var res dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		ref.Namespace = obj.GetNamespace()
		res = a.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
	} else {
		obj.SetNamespace("")
		ref.Namespace = ""
	}
	if _, err := res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: nodeconfig.ManifestsFieldManager, Force: true}); err != nil {
		return ref, err
	}
	if obj.GetKind() == "CustomResourceDefinition" {
		return ref, a.waitEstablished(ctx, res, obj.GetName())
	}
	return ref, nil
}

// mapping finds the resource of a kind, asking discovery again once when
// the kind is new (a CustomResourceDefinition applied just before).
func (a *applier) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("the cluster serves no %s in %s (is its CustomResourceDefinition applied and Established?)", gvk.Kind, gvk.GroupVersion())
	}
	return m, err
}

func (a *applier) waitEstablished(ctx context.Context, res dynamic.ResourceInterface, name string) error {
	deadline := time.Now().Add(establishWait)
	for {
		crd, err := res.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					a.mapper.Reset()
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CustomResourceDefinition %s is not Established after %s", name, establishWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// prune deletes an object the folder no longer holds, unless it is gone.
func (a *applier) prune(ctx context.Context, o nodeconfig.ManifestObject) error {
	gvk := schema.GroupVersionKind{Group: o.Group, Version: o.Version, Kind: o.Kind}
	mapping, err := a.mapping(gvk)
	if err != nil {
		return nil // its kind is gone, and the object with it
	}
	var res dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if o.Namespace != "" {
		res = a.dyn.Resource(mapping.Resource).Namespace(o.Namespace)
	}
	err = res.Delete(ctx, o.Name, metav1.DeleteOptions{PropagationPolicy: ptrTo(metav1.DeletePropagationBackground)})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// record returns the folder's ConfigMap, making it the first time.
func (a *applier) record(ctx context.Context) (*corev1.ConfigMap, error) {
	cms := a.kube.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm, err := cms.Get(ctx, nodeconfig.ManifestsConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: nodeconfig.ManifestsConfigMap, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "minik"},
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("read the manifests record: %w", err)
	}
	return cm, nil
}

func (a *applier) save(ctx context.Context, cm *corev1.ConfigMap, inventory []nodeconfig.ManifestObject, files []nodeconfig.ManifestFile) error {
	sort.Slice(inventory, func(i, j int) bool { return key(inventory[i]) < key(inventory[j]) })
	inv, _ := json.MarshalIndent(inventory, "", "  ")
	st, _ := json.MarshalIndent(files, "", "  ")
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[nodeconfig.ManifestsInventoryKey] = string(inv)
	cm.Data[nodeconfig.ManifestsStatusKey] = string(st)
	if _, err := a.kube.CoreV1().ConfigMaps(metav1.NamespaceSystem).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("write the manifests record: %w", err)
	}
	return nil
}

func objectOf(obj *unstructured.Unstructured) nodeconfig.ManifestObject {
	gvk := obj.GroupVersionKind()
	return nodeconfig.ManifestObject{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

func key(o nodeconfig.ManifestObject) string {
	return strings.Join([]string{o.Group, o.Kind, o.Namespace, o.Name}, "/")
}

func describe(o nodeconfig.ManifestObject) string {
	if o.Namespace != "" {
		return o.Kind + " " + o.Namespace + "/" + o.Name
	}
	return o.Kind + " " + o.Name
}

func ptrTo[T any](v T) *T { return &v }
