// Package gatewayconformance runs the Gateway API conformance suite of
// sigs.k8s.io/gateway-api/conformance (the module's version in go.mod)
// against a docker minik cluster: `make gateway-conformance`. The suite's
// backends run the module's own echo server, built here into a local
// image (FROM scratch) under every echo image name the suite's manifests
// use, since nothing can be pulled. The test is skipped unless
// MINIK_GATEWAY_CONFORMANCE is set.
package gatewayconformance
