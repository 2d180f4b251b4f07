package loadbalancer

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	cloudprovider "k8s.io/cloud-provider"
	servicecontroller "k8s.io/cloud-provider/controllers/service"
	"k8s.io/component-base/metrics/prometheus/controllers"
)

// Run runs the upstream service controller with a pool of addresses from
// cidr until ctx is done. A non-nil localhost also publishes every
// LoadBalancer Service on the host's 127.0.0.1.
func Run(ctx context.Context, client kubernetes.Interface, cluster, cidr string, localhost *Localhost) error {
	pool, err := NewPool(cidr)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	c, err := servicecontroller.New(&provider{lb: &loadBalancers{pool: pool, localhost: localhost}}, client, services, nodes, cluster, utilfeature.DefaultFeatureGate)
	if err != nil {
		return fmt.Errorf("create the service controller: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced, nodes.Informer().HasSynced) {
		return ctx.Err()
	}
	// Addresses given before a restart stay with their Services.
	list, err := services.Lister().List(labels.Everything())
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" && in.IP != Loopback {
				_, _ = pool.Allocate(s.Namespace+"/"+s.Name, in.IP)
			}
		}
	}
	c.Run(ctx, 2, controllers.NewControllerManagerMetrics("minik"))
	return nil
}

// provider is minik's cloud provider: load balancers and nothing else.
type provider struct {
	lb *loadBalancers
}

var _ cloudprovider.Interface = (*provider)(nil)

func (p *provider) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}
func (p *provider) LoadBalancer() (cloudprovider.LoadBalancer, bool)                  { return p.lb, true }
func (p *provider) Instances() (cloudprovider.Instances, bool)                        { return nil, false }
func (p *provider) InstancesV2() (cloudprovider.InstancesV2, bool)                    { return nil, false }
func (p *provider) Zones() (cloudprovider.Zones, bool)                                { return nil, false }
func (p *provider) Clusters() (cloudprovider.Clusters, bool)                          { return nil, false }
func (p *provider) Routes() (cloudprovider.Routes, bool)                              { return nil, false }
func (p *provider) ProviderName() string                                              { return "minik" }
func (p *provider) HasClusterID() bool                                                { return true }

// loadBalancers is a load balancer per Service: an address of the pool.
// Traffic to it is the control-plane node's business (it proxies to the
// Service's endpoints), so a change of nodes or ports needs nothing here.
type loadBalancers struct {
	pool *Pool
	// localhost, when set, publishes each load balancer on the host's
	// 127.0.0.1 too.
	localhost *Localhost
}

var _ cloudprovider.LoadBalancer = (*loadBalancers)(nil)

func key(s *corev1.Service) string { return s.Namespace + "/" + s.Name }

func (l *loadBalancers) GetLoadBalancer(_ context.Context, _ string, s *corev1.Service) (*corev1.LoadBalancerStatus, bool, error) {
	l.pool.mu.Lock()
	a, ok := l.pool.byService[key(s)]
	l.pool.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	return l.status(format(a)), true, nil
}

func (l *loadBalancers) GetLoadBalancerName(_ context.Context, cluster string, s *corev1.Service) string {
	return cluster + "-" + s.Namespace + "-" + s.Name
}

func (l *loadBalancers) EnsureLoadBalancer(ctx context.Context, _ string, s *corev1.Service, _ []*corev1.Node) (*corev1.LoadBalancerStatus, error) {
	ip, err := l.pool.Allocate(key(s), s.Spec.LoadBalancerIP)
	if err != nil {
		return nil, err
	}
	// The service controller calls this again when the ports change, so
	// the forwarder follows them.
	if l.localhost != nil {
		if err := l.localhost.Ensure(ctx, s, ip); err != nil {
			return nil, err
		}
	}
	return l.status(ip), nil
}

func (l *loadBalancers) UpdateLoadBalancer(context.Context, string, *corev1.Service, []*corev1.Node) error {
	return nil
}

func (l *loadBalancers) EnsureLoadBalancerDeleted(ctx context.Context, _ string, s *corev1.Service) error {
	if l.localhost != nil {
		if err := l.localhost.Remove(ctx, key(s)); err != nil {
			return err
		}
		// A Service that is no longer a LoadBalancer keeps no stale ports;
		// a deleted one has nothing to patch.
		_ = l.localhost.annotate(ctx, s, "")
	}
	l.pool.Release(key(s))
	return nil
}

// status is a Service's addresses: the pool's, then the host's loopback
// when its ports are published there.
func (l *loadBalancers) status(ip string) *corev1.LoadBalancerStatus {
	vip := corev1.LoadBalancerIPModeVIP
	st := &corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: ip, IPMode: &vip}}}
	if l.localhost != nil {
		st.Ingress = append(st.Ingress, corev1.LoadBalancerIngress{IP: Loopback, IPMode: &vip})
	}
	return st
}
