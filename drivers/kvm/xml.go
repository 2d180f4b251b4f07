// Package kvm is the kvm driver: nodes as libvirt domains, booted directly
// from a kernel and an initramfs whose /init is minik-node (node-image/vm),
// on an isolated libvirt network per cluster, through libvirtd's RPC
// protocol. minik's labels sit in each domain's and network's metadata so
// the driver finds exactly what it made, and only what its own minik home
// made. Pods are runc containers in the VMs.
package kvm

import (
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// MetadataNamespace is the XML namespace of minik's element in a domain's
// or network's <metadata>.
const MetadataNamespace = "https://minik.dev/libvirt/1"

// Labels are minik's marks on what it makes in libvirt, as the docker
// driver's are container labels.
type Labels struct {
	XMLName xml.Name `xml:"https://minik.dev/libvirt/1 minik"`
	Cluster string   `xml:"cluster,attr"`
	Node    string   `xml:"node,attr,omitempty"`
	Role    string   `xml:"role,attr,omitempty"`
	// Profile is the profile folder of the minik home that made it: libvirt's
	// names come from the cluster's name alone, which two homes may share.
	Profile string `xml:"profile,attr,omitempty"`
}

// Accelerators: kvm when the CPU has vmx/svm and /dev/kvm opens, else
// QEMU's software emulation (TCG).
const (
	AccelKVM = "kvm"
	AccelTCG = "qemu"
)

// DomainSpec is one node's VM.
type DomainSpec struct {
	Labels
	// Name is the domain's name (the node's).
	Name string
	// UUID is the defined domain's, when defining it again; "" lets
	// libvirt choose one.
	UUID      string
	MemoryMiB uint
	CPUs      uint
	// Accel is AccelKVM or AccelTCG.
	Accel string
	// Kernel, Initrd and Cmdline boot the node directly, with no disk
	// to boot from.
	Kernel, Initrd, Cmdline string
	// Firmware (a UEFI ROM such as OVMF) boots BootDisk (a fixed VHD made
	// by efidisk) instead, when set.
	Firmware, BootDisk string
	// DataDisk is the node's disk (raw, ext4): its state across stop and
	// start.
	DataDisk string
	// Network is the cluster's libvirt network; MAC the node's address on it.
	Network, MAC string
	// ConsoleLog receives the node's serial console.
	ConsoleLog string
}

// DomainXML is the libvirt domain of one node.
func DomainXML(s DomainSpec) (string, error) {
	if s.Accel != AccelKVM && s.Accel != AccelTCG {
		return "", fmt.Errorf("accelerator %q: use %s or %s", s.Accel, AccelKVM, AccelTCG)
	}
	meta, err := xml.Marshal(s.Labels)
	if err != nil {
		return "", err
	}
	serialPort := uint(0)
	bootOS := &libvirtxml.DomainOS{
		Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"},
		Kernel:  s.Kernel,
		Initrd:  s.Initrd,
		Cmdline: s.Cmdline,
	}
	// The data disk comes first, so the guest sees it as vda either way.
	disks := []libvirtxml.DomainDisk{{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw", Cache: "unsafe"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.DataDisk}},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
	}}
	if s.Firmware != "" {
		if s.BootDisk == "" || s.Kernel != "" {
			return "", fmt.Errorf("domain %s: firmware boots a boot disk, not a kernel", s.Name)
		}
		bootOS = &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"},
			Loader: &libvirtxml.DomainLoader{Path: s.Firmware, Type: "rom", Readonly: "yes"},
		}
		disks = append(disks, libvirtxml.DomainDisk{
			Device:   "disk",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "vpc"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.BootDisk}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: "vdb", Bus: "virtio"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
			Boot:     &libvirtxml.DomainDeviceBoot{Order: 1},
		})
	}
	d := libvirtxml.Domain{
		Type:       s.Accel,
		Name:       s.Name,
		UUID:       s.UUID,
		Metadata:   &libvirtxml.DomainMetadata{XML: string(meta)},
		Memory:     &libvirtxml.DomainMemory{Value: s.MemoryMiB, Unit: "MiB"},
		VCPU:       &libvirtxml.DomainVCPU{Value: s.CPUs},
		OS:         bootOS,
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy",
		// minik-node as init never reboots: a reboot is a crash of
		// init (a kernel panic), and the node stays off for its log to
		// be read rather than loop.
		OnReboot: "destroy",
		OnCrash:  "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: disks,
			Interfaces: []libvirtxml.DomainInterface{{
				MAC:    &libvirtxml.DomainInterfaceMAC{Address: s.MAC},
				Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.Network}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: s.ConsoleLog}},
				Target: &libvirtxml.DomainSerialTarget{Port: &serialPort},
			}},
			RNGs: []libvirtxml.DomainRNG{{
				Model:   "virtio",
				Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
			}},
		},
	}
	if s.Accel == AccelKVM {
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	return d.Marshal()
}

// NetworkSpec is a cluster's network: isolated (no forwarding, so no
// packet leaves this machine), the host on its gateway address, node IPs
// fixed by the nodes themselves (no DHCP).
type NetworkSpec struct {
	Cluster string
	// Profile is the profile folder of the minik home that makes it.
	Profile string
	Name    string
	// Subnet is the cluster network's CIDR; the host takes its first address.
	Subnet netip.Prefix
}

// NetworkXML is the libvirt network of one cluster.
func NetworkXML(s NetworkSpec) (string, error) {
	if !s.Subnet.Addr().Is4() {
		return "", fmt.Errorf("network %s: subnet %s is not IPv4", s.Name, s.Subnet)
	}
	meta, err := xml.Marshal(Labels{Cluster: s.Cluster, Profile: s.Profile})
	if err != nil {
		return "", err
	}
	n := libvirtxml.Network{
		Name:     s.Name,
		Metadata: &libvirtxml.NetworkMetadata{XML: string(meta)},
		Bridge:   &libvirtxml.NetworkBridge{Name: BridgeName(s.Cluster), STP: "off"},
		IPs: []libvirtxml.NetworkIP{{
			Address: s.Subnet.Masked().Addr().Next().String(),
			Prefix:  uint(s.Subnet.Bits()),
		}},
	}
	return n.Marshal()
}

// BridgeName is the cluster network's bridge: Linux allows 15 bytes.
func BridgeName(cluster string) string {
	name := "mk-" + cluster
	if len(name) <= 15 {
		return name
	}
	sum := sha256.Sum256([]byte(cluster))
	return fmt.Sprintf("mk-%s-%x", cluster[:6], sum[:2])
}

// MAC is a node's stable, locally administered address.
func MAC(cluster, node string) string {
	sum := sha256.Sum256([]byte(cluster + "/" + node))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])
}

// DomainLabels reads minik's labels from a domain's XML; ok is false for a
// domain minik did not make.
func DomainLabels(domainXML string) (Labels, bool) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domainXML); err != nil || d.Metadata == nil {
		return Labels{}, false
	}
	return metadataLabels(d.Metadata.XML)
}

// DomainProfile is the profile folder a node's domain belongs to: its
// label, or for a domain made before the label, the folder its disk is
// in (PROFILE/nodes/NODE/vm/FILE); "" when neither tells.
func DomainProfile(domainXML string) string {
	lb, ok := DomainLabels(domainXML)
	if !ok {
		return ""
	}
	if lb.Profile != "" {
		return lb.Profile
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(domainXML); err != nil || d.Devices == nil {
		return ""
	}
	for _, disk := range d.Devices.Disks {
		if disk.Source == nil || disk.Source.File == nil {
			continue
		}
		vm := filepath.Dir(disk.Source.File.File)
		node := filepath.Dir(vm)
		nodes := filepath.Dir(node)
		if filepath.Base(vm) == vmDir && filepath.Base(node) == lb.Node && filepath.Base(nodes) == "nodes" {
			return filepath.Dir(nodes)
		}
	}
	return ""
}

// NetworkLabels reads minik's labels from a network's XML.
func NetworkLabels(networkXML string) (Labels, bool) {
	var n libvirtxml.Network
	if err := n.Unmarshal(networkXML); err != nil || n.Metadata == nil {
		return Labels{}, false
	}
	return metadataLabels(n.Metadata.XML)
}

func metadataLabels(inner string) (Labels, bool) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	for {
		tok, err := dec.Token()
		if err != nil {
			return Labels{}, false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == MetadataNamespace && se.Name.Local == "minik" {
			var l Labels
			if err := dec.DecodeElement(&l, &se); err != nil || l.Cluster == "" {
				return Labels{}, false
			}
			return l, true
		}
	}
}
