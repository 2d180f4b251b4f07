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
	rate := plan.CPUNanoCores()
	uptime := max(now.Round(0).Sub(running.StartedAt.Time), 0)
	return Usage{
		CPUNanoCores:            rate,
		CPUUsageCoreNanoSeconds: max(mulDivSat(rate, uint64(uptime), uint64(time.Second)), 1),
		MemoryWorkingSetBytes:   plan.MemoryBytes(),
		StartTime:               running.StartedAt.Time,
	}, true
}

// CPUNanoCores is the CPU a running container of the plan uses.
func (p Plan) CPUNanoCores() uint64 {
	return max(quantityUint(p.CPU, resource.Nano), minCPUNanoCores)
}

// MemoryBytes is the working set of a running container of the plan.
func (p Plan) MemoryBytes() uint64 {
	return max(quantityUint(p.Memory, resource.Scale(0)), minMemoryBytes)
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

// Integrate adds d of use at nanoCores to a cumulative core-nanosecond
// counter, saturating instead of wrapping.
func Integrate(total, nanoCores uint64, d time.Duration) uint64 {
	if d <= 0 {
		return total
	}
	sum, carry := bits.Add64(total, mulDivSat(nanoCores, uint64(d), uint64(time.Second)), 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return sum
}
