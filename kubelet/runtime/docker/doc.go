// Package docker is the node agent's docker runtime: each pod is a sandbox
// container on the cluster's network (its address is the pod IP) plus one
// container per app container in the sandbox's namespaces, run by the
// engine that runs the node. It implements runtime.Runtime and
// runtime.Streaming: restarts with the kubelet's back-off, probes,
// volumes (emptyDir, hostPath, claims, projected files), logs, exec,
// attach, port-forward and usage, through the Engine interface.
package docker
