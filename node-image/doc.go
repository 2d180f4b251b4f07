// Package nodeimage is the home of minik's node images, one package per
// kind: what a driver boots a node from, built on the user's machine from
// minik-node. Today there is one kind, node-image/container (package
// containerimage), the container image the docker driver runs; the VM image
// of the kvm and hyperv drivers will be a sibling package. This package
// itself holds no code.
package nodeimage
