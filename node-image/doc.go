// Package nodeimage is the home of minik's node images, one package per
// kind: what a driver boots a node from, built on the user's machine from
// minik-node. node-image/container (package containerimage) is the
// container image the docker driver runs; node-image/vm (package vmimage)
// writes the kernel and initramfs a VM node will boot from (no VM driver
// uses it yet). This package itself holds no code.
package nodeimage
