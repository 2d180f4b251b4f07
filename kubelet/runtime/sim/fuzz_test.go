package sim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's minik.dev/ annotations are written by users: every value parses
// to a plan or an error for its key, never a panic.
func FuzzParsePlan(f *testing.F) {
	f.Add("minik.dev/start-delay", "2s")
	f.Add("minik.dev/cpu", "250m")
	f.Add("minik.dev/memory", "-64Mi")
	f.Add("minik.dev/exit-after", "1e309s")
	f.Add("minik.dev/exit-code", "99999999999999999999")
	f.Add("minik.dev/ready-after", "")
	f.Fuzz(func(t *testing.T, key, value string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{key: value}}}
		_, errs := ParsePlan(pod)
		for _, err := range errs {
			if err == nil || err.Error() == "" {
				t.Fatalf("%s=%q: an empty error", key, value)
			}
		}
	})
}
