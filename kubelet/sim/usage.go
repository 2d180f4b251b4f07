package sim

import (
	"math"
	"math/bits"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Usage floors: a running process always uses something, and metrics
// consumers treat zero as "no data".
const (
	minCPUNanoCores = 1_000_000 // 1m
	minMemoryBytes  = 1 << 20   // 1Mi
)

// Usage is the synthesized resource use of one running container.
type Usage struct {
	CPUNanoCores uint64
	// CPUUsageCoreNanoSeconds is cumulative for the current run: the rate
	// times the uptime, so rates computed from two samples match CPUNanoCores.
	CPUUsageCoreNanoSeconds uint64
	MemoryWorkingSetBytes   uint64
	StartTime               time.Time
}

// ContainerUsage is the container's use at now, or false when it is not running.
func ContainerUsage(plan Plan, status corev1.ContainerStatus, now time.Time) (Usage, bool) {
	running := status.State.Running
	if running == nil {
		return Usage{}, false
	}
	rate := max(quantityUint(plan.CPU, resource.Nano), minCPUNanoCores)
	uptime := max(now.Round(0).Sub(running.StartedAt.Time), 0)
	return Usage{
		CPUNanoCores:            rate,
		CPUUsageCoreNanoSeconds: max(mulDivSat(rate, uint64(uptime), uint64(time.Second)), 1),
		MemoryWorkingSetBytes:   max(quantityUint(plan.Memory, resource.Scale(0)), minMemoryBytes),
		StartTime:               running.StartedAt.Time,
	}, true
}

func quantityUint(q resource.Quantity, scale resource.Scale) uint64 {
	if q.Sign() <= 0 {
		return 0
	}
	// ScaledValue wraps silently beyond int64: saturate instead.
	if q.AsApproximateFloat64()*math.Pow10(-int(scale)) >= math.MaxInt64/2 {
		return math.MaxInt64
	}
	return uint64(q.ScaledValue(scale))
}

// mulDivSat is a*b/d without intermediate overflow (cores × months of
// nanoseconds exceeds 64 bits), saturating if the result does not fit.
func mulDivSat(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, d)
	return q
}
