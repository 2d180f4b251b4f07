// Package vmnode is what minik's VM drivers (kvm, hyperv) share about a
// node: where it sees the profile and keeps its data, the kernel command
// line that tells it who it is, the profile's files its initramfs carries,
// and the runc runtime its pods run in.
package vmnode

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"path/filepath"
	"strings"

	"minik.dev/minik/drivers"
	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
	"minik.dev/minik/nodeconfig"
)

// Where a node sees things: the profile is in the initramfs, the data
// disk is mounted on DataDir.
const (
	ProfileDir    = "/minik"
	DataDir       = "/var/lib/minik"
	ManifestsDir  = "/minik-manifests"
	APIServerPort = 6443
	// PodBridge holds the node's interface and its pods' veths, so pod
	// addresses are on the cluster network (the runc runtime's bridge).
	PodBridge = "minik0"
	// RuncState is runc's folder on the data disk (images, pods' writable
	// layers and volumes); RuncRun its runtime state.
	RuncState = DataDir + "/runc"
	RuncRun   = "/run/minik"
)

// View is how a VM node sees the profile, for drivers.Info.
func View() *drivers.NodeView {
	return &drivers.NodeView{ProfileDir: ProfileDir, DataDir: DataDir, APIServerPort: APIServerPort, ManifestsDir: ManifestsDir}
}

// ProfileFiles is the profile folder (and a manifests folder outside it)
// as the node sees it, without any node's VM files (the folder vmDir of
// each node's folder: disks and initramfs images, which hold the keys
// already and would only grow every initramfs).
func ProfileFiles(n drivers.Node, vmDir string) ([]vmimage.File, error) {
	var files []vmimage.File
	add := func(root, inNode string) error {
		return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == vmDir && filepath.Base(filepath.Dir(filepath.Dir(p))) == "nodes" {
				return filepath.SkipDir
			}
			if !e.Type().IsRegular() {
				return nil
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, vmimage.File{Path: path.Join(inNode, filepath.ToSlash(rel)), Mode: info.Mode().Perm(), Source: p})
			return nil
		})
	}
	if err := add(n.ProfileDir, ProfileDir); err != nil {
		return nil, fmt.Errorf("read the profile folder: %w", err)
	}
	if n.ManifestsDir != "" && n.Role == nodeconfig.RoleControlPlane {
		if err := add(n.ManifestsDir, ManifestsDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read the manifests folder: %w", err)
		}
	}
	return files, nil
}

// Cmdline is the node's kernel command line: its address, the host's,
// where its config is and which disk (dataDisk, a device path) keeps its
// data (see cmd/minik-node's VM init).
func Cmdline(n drivers.Node, dataDisk string) (string, error) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		return "", fmt.Errorf("node %s: cluster subnet %q: %w", n.Name, n.Subnet, err)
	}
	ip, err := netip.ParseAddr(n.IP)
	if err != nil {
		return "", fmt.Errorf("node %s: address %q: %w", n.Name, n.IP, err)
	}
	rel, err := filepath.Rel(n.ProfileDir, n.ConfigPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("node config %s is not inside the profile folder %s, which is all a node sees", n.ConfigPath, n.ProfileDir)
	}
	nw := guest.Network{Address: netip.PrefixFrom(ip, subnet.Bits()), Gateway: subnet.Masked().Addr().Next(), Hostname: n.Name, Bridge: PodBridge}
	return strings.Join([]string{
		"console=ttyS0", "panic=-1", "quiet", nw.Cmdline(),
		"minik.config=" + path.Join(ProfileDir, filepath.ToSlash(rel)),
		"minik.disk=" + dataDisk, "minik.data=" + DataDir,
	}, " "), nil
}

// Configure sets cfg's runtime: pods are runc containers on the node's
// bridge, with addresses of the cluster network, and the control-plane
// node answers for ClusterIPs and the cluster DNS. imageServer is the
// host's image server ("" for none).
func Configure(n drivers.Node, cfg *nodeconfig.Config, imageServer string) {
	subnet, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		// StartNode reports the bad subnet; the config fails validation.
		return
	}
	cfg.Runtime = nodeconfig.RuntimeRunc
	cfg.Runc = &nodeconfig.RuncRuntime{
		Bridge: PodBridge, Gateway: subnet.Masked().Addr().Next().String(), PrefixLen: subnet.Bits(),
		ImageServer: imageServer,
		StateDir:    RuncState, RunDir: RuncRun,
		ServiceNetwork: nodeconfig.ServiceNetwork{
			ServiceCIDR: n.ServiceCIDR, DNSDomain: n.DNSDomain, ServeServices: n.Role == nodeconfig.RoleControlPlane,
		},
	}
}
