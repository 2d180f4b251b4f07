// Package podroutes keeps this machine's routes to the pods of nodes that
// joined from other machines: for each joined Node with a podCIDR and an
// InternalIP, a route to the podCIDR through that IP, so the host and
// the nodes that share its network reach those pods at their own
// addresses. It is what a simple host-gw network plugin does, and it
// needs permission to change the routing table (root, or CAP_NET_ADMIN).
package podroutes

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"minik.dev/minik/nodeconfig"
)

// Route is one podCIDR and the node address it goes through.
type Route struct {
	Dst     *net.IPNet
	Gateway net.IP
}

func (r Route) String() string { return r.Dst.String() + " via " + r.Gateway.String() }

// Table changes the machine's routing table.
type Table interface {
	// Replace adds the route, or changes the gateway of one to Dst.
	Replace(r Route) error
	// Delete removes the route; one already gone is no error.
	Delete(r Route) error
}

// Options configure Run.
type Options struct {
	Client kubernetes.Interface
	// Table is the routing table to keep (the host's: NewTable()).
	Table Table
	// Recorder gets a Warning on a Node whose route cannot be made.
	Recorder record.EventRecorder
	// Resync is how often every route is made again (a route someone
	// deleted); between resyncs only a changed route is (every Node
	// status update is an event, and on the docker driver each route
	// change is an exec in the route helper); 0 means a minute.
	Resync time.Duration
}

// Run keeps the routes until ctx is done, then removes the ones it made.
func Run(ctx context.Context, o Options) error {
	if o.Resync <= 0 {
		o.Resync = time.Minute
	}
	selector := labels.SelectorFromSet(labels.Set{nodeconfig.JoinedLabel: "true"}).String()
	factory := informers.NewSharedInformerFactoryWithOptions(o.Client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = selector }))
	nodes := factory.Core().V1().Nodes()
	informer := nodes.Informer()
	k := &keeper{o: o, made: map[string]Route{}, failed: map[string]string{}}
	kick := make(chan struct{}, 1)
	wake := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    wake,
		UpdateFunc: func(_, n any) { wake(n) },
		DeleteFunc: wake,
	}); err != nil {
		return fmt.Errorf("watch joined nodes: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		k.removeAll()
		return nil
	}
	resync := time.NewTicker(o.Resync)
	defer resync.Stop()
	force := true
	for {
		list, err := nodes.Lister().List(labels.Everything())
		if err != nil {
			klog.ErrorS(err, "list joined nodes")
		} else {
			k.sync(list, force)
		}
		select {
		case <-ctx.Done():
			k.removeAll()
			return nil
		case <-kick:
			force = false
		case <-resync.C:
			force = true
		}
	}
}

// keeper remembers the routes it made, so it removes only those.
type keeper struct {
	o  Options
	mu sync.Mutex
	// made is the route of each node, by name.
	made map[string]Route
	// failed is the last error of each node's route, so a Warning is
	// recorded once per new error, not at every resync.
	failed map[string]string
}

// Want is the route a joined node needs, if it has what it takes.
func Want(n *corev1.Node) (Route, bool) {
	_, cidr, err := net.ParseCIDR(n.Spec.PodCIDR)
	if err != nil || cidr.IP.To4() == nil {
		return Route{}, false
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if ip := net.ParseIP(a.Address).To4(); ip != nil {
			return Route{Dst: cidr, Gateway: ip}, true
		}
	}
	return Route{}, false
}

// sync makes the routes of nodes, and removes those of nodes gone. A
// route already made is made again only when force is set.
func (k *keeper) sync(nodes []*corev1.Node, force bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	seen := map[string]bool{}
	for _, n := range nodes {
		want, ok := Want(n)
		if !ok || n.Labels[nodeconfig.JoinedLabel] != "true" {
			continue
		}
		seen[n.Name] = true
		old, had := k.made[n.Name]
		if had && old.String() == want.String() && !force {
			continue
		}
		if had && old.String() != want.String() {
			k.delete(n.Name, old)
		}
		if err := k.o.Table.Replace(want); err != nil {
			msg := fmt.Sprintf("this machine has no route to the node's pods (%s): %v; make it by hand (ip route replace %s via %s) or run minik as root",
				want, err, want.Dst, want.Gateway)
			if k.failed[n.Name] != msg {
				k.failed[n.Name] = msg
				klog.ErrorS(err, "route to a joined node's pods", "node", n.Name, "route", want.String())
				if k.o.Recorder != nil {
					k.o.Recorder.Event(n, corev1.EventTypeWarning, "PodRouteFailed", msg)
				}
			}
			continue
		}
		delete(k.failed, n.Name)
		if !had || old.String() != want.String() {
			klog.InfoS("route to a joined node's pods", "node", n.Name, "route", want.String())
		}
		k.made[n.Name] = want
	}
	for name, r := range k.made {
		if !seen[name] {
			k.delete(name, r)
		}
	}
	for name := range k.failed {
		if !seen[name] {
			delete(k.failed, name)
		}
	}
}

func (k *keeper) delete(name string, r Route) {
	if err := k.o.Table.Delete(r); err != nil {
		klog.ErrorS(err, "remove the route to a joined node's pods", "node", name, "route", r.String())
	}
	delete(k.made, name)
}

// removeAll removes every route this keeper made: the cluster's routes
// go with its control plane.
func (k *keeper) removeAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for name, r := range k.made {
		k.delete(name, r)
	}
}
