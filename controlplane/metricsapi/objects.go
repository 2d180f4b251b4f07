package metricsapi

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// ListerObjects answers Objects from informer caches: Nodes, and pods as
// metadata only, which is all a selector needs and a fraction of the memory.
type ListerObjects struct {
	Nodes corelisters.NodeLister
	Pods  cache.GenericLister
}

var _ Objects = ListerObjects{}

// NodeLabels implements Objects.
func (o ListerObjects) NodeLabels(name string) (map[string]string, bool) {
	n, err := o.Nodes.Get(name)
	if err != nil {
		return nil, false
	}
	return n.Labels, true
}

// PodLabels implements Objects.
func (o ListerObjects) PodLabels(namespace, name string) (map[string]string, bool) {
	obj, err := o.Pods.ByNamespace(namespace).Get(name)
	if err != nil {
		return nil, false
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, false
	}
	return m.GetLabels(), true
}
