package storage

import (
	"context"
	"fmt"
)

// SimBackend keeps no bytes: on the sim runtime no process reads or
// writes a volume, so a volume is its PersistentVolume object, bound to
// the node of its first pod like a local volume.
type SimBackend struct {
	// Dir is where the node keeps its data: its disk is what "free" means.
	Dir string
}

// Create implements Backend.
func (SimBackend) Create(_ context.Context, pv string, _ int64) (string, error) { return pv, nil }

// Delete implements Backend.
func (SimBackend) Delete(context.Context, string) error { return nil }

// Shared implements Backend.
func (SimBackend) Shared() bool { return false }

// Free implements Backend.
func (b SimBackend) Free(context.Context) (int64, error) { return freeBytes(b.Dir) }

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
func (b EngineBackend) Delete(ctx context.Context, handle string) error {
	return b.Engine.RemoveClaimVolume(ctx, handle)
}

// Shared implements Backend.
func (EngineBackend) Shared() bool { return true }

// Free implements Backend.
func (b EngineBackend) Free(context.Context) (int64, error) { return freeBytes(b.Dir) }

var (
	_ Backend = SimBackend{}
	_ Backend = EngineBackend{}
)

func errFree(dir string, err error) error {
	return fmt.Errorf("free disk of %s: %w", dir, err)
}

// gibibytes writes a size for people: 68.4Gi.
func gibibytes(n int64) string {
	return fmt.Sprintf("%.1fGi", float64(n)/(1<<30))
}
