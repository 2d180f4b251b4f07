package storage

import (
	"context"
	"fmt"
)

// NodeBackend makes a volume its PersistentVolume object alone, bound to
// the node of its first pod like a local volume. The node keeps the bytes:
// on the sim runtime there are none (no process reads or writes them); a
// runc node (a VM) keeps a folder on its own disk, which RemoveOnNode
// deletes through the node's kubelet API, since nothing else reaches it.
type NodeBackend struct {
	// Dir is where the node keeps its data: its disk is what "free" means.
	Dir string
	// RemoveOnNode removes the volume handle from node's disk; nil where
	// nodes keep no bytes.
	RemoveOnNode func(ctx context.Context, node, handle string) error
}

// Create implements Backend.
func (NodeBackend) Create(_ context.Context, pv string, _ int64) (string, error) { return pv, nil }

// Delete implements Backend.
func (b NodeBackend) Delete(ctx context.Context, handle, node string) error {
	if b.RemoveOnNode == nil || node == "" {
		return nil
	}
	return b.RemoveOnNode(ctx, node, handle)
}

// Shared implements Backend.
func (NodeBackend) Shared() bool { return false }

// Free implements Backend.
func (b NodeBackend) Free(context.Context) (int64, error) { return freeBytes(b.Dir) }

// EngineVolumes is what EngineBackend needs of the container engine.
type EngineVolumes interface {
	EnsureClaimVolume(ctx context.Context, pv string) (string, error)
	RemoveClaimVolume(ctx context.Context, name string) error
}

// EngineBackend keeps each volume's data in a volume of the container
// engine that runs the cluster's nodes, labelled with the cluster (so
// deleting the cluster removes it). Every node's pods can mount it.
type EngineBackend struct {
	Engine EngineVolumes
	// Dir is a folder on the engine's disk: its free space is the volumes'.
	Dir string
}

// Create implements Backend.
func (b EngineBackend) Create(ctx context.Context, pv string, _ int64) (string, error) {
	return b.Engine.EnsureClaimVolume(ctx, pv)
}

// Delete implements Backend.
func (b EngineBackend) Delete(ctx context.Context, handle, _ string) error {
	return b.Engine.RemoveClaimVolume(ctx, handle)
}

// Shared implements Backend.
func (EngineBackend) Shared() bool { return true }

// Free implements Backend.
func (b EngineBackend) Free(context.Context) (int64, error) { return freeBytes(b.Dir) }

var (
	_ Backend = NodeBackend{}
	_ Backend = EngineBackend{}
)

func errFree(dir string, err error) error {
	return fmt.Errorf("free disk of %s: %w", dir, err)
}

// gibibytes writes a size for people: 68.4Gi.
func gibibytes(n int64) string {
	return fmt.Sprintf("%.1fGi", float64(n)/(1<<30))
}
