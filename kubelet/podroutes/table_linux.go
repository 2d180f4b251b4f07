package podroutes

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink"
)

// routeProtocol marks minik's routes (`ip route` shows proto 77), so
// they are told apart from the machine's own.
const routeProtocol netlink.RouteProtocol = 77

// hostTable is the routing table of this process's network namespace.
type hostTable struct{}

// NewTable is this machine's main routing table.
func NewTable() Table { return hostTable{} }

func (hostTable) Replace(r Route) error {
	if err := netlink.RouteReplace(&netlink.Route{Dst: r.Dst, Gw: r.Gateway, Protocol: routeProtocol}); err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	return nil
}

func (hostTable) Delete(r Route) error {
	err := netlink.RouteDel(&netlink.Route{Dst: r.Dst, Gw: r.Gateway, Protocol: routeProtocol})
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("remove route %s: %w", r, err)
	}
	return nil
}
