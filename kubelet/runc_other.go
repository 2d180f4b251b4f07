//go:build !linux

package kubelet

import (
	"context"
	"errors"

	"minik.dev/minik/kubelet/runtime/docker"
	"minik.dev/minik/nodeconfig"
)

func newRuncEngine(context.Context, *nodeconfig.Config, func(context.Context) (string, error)) (docker.Engine, error) {
	return nil, errors.New("the runc runtime needs a Linux node")
}
