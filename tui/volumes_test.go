package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestAccessModes(t *testing.T) {
	const (
		rwo, rox, rwx, rwop = corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod
	)
	for _, tc := range []struct {
		modes []corev1.PersistentVolumeAccessMode
		want  string
	}{
		{nil, ""},
		{[]corev1.PersistentVolumeAccessMode{rwo}, "RWO"},
		{[]corev1.PersistentVolumeAccessMode{rox}, "ROX"},
		{[]corev1.PersistentVolumeAccessMode{rwx}, "RWX"},
		{[]corev1.PersistentVolumeAccessMode{rwop}, "RWOP"},
		{[]corev1.PersistentVolumeAccessMode{rwop, rwx, rox, rwo}, "RWO,ROX,RWX,RWOP"}, // kubectl's order, not the object's
		{[]corev1.PersistentVolumeAccessMode{rwx, rwx, rwo}, "RWO,RWX"},
		{[]corev1.PersistentVolumeAccessMode{"ReadWriteSometimes", rox}, "ROX"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, accessModes(tc.modes))
		})
	}
}

func TestClaimStatusAndTone(t *testing.T) {
	bound := claim("default", "c", "1Gi", "pvc-1", "uid-c", time.Minute)
	deleting := bound.DeepCopy()
	deleting.DeletionTimestamp = ptr.To(metav1.NewTime(now))
	lost := bound.DeepCopy()
	lost.Status.Phase = corev1.ClaimLost
	unset := claim("default", "c", "1Gi", "", "uid-c", time.Minute)
	unset.Status.Phase = ""
	for _, tc := range []struct {
		name   string
		claim  *corev1.PersistentVolumeClaim
		status string
		tone   tone
	}{
		{"pending", claim("default", "c", "5Gi", "", "uid-c", time.Minute), "Pending", toneWarn},
		{"no phase yet", unset, "Pending", toneWarn},
		{"bound", bound, "Bound", toneNormal},
		{"lost", lost, "Lost", toneBad},
		{"deleted while in use", deleting, "Terminating", toneWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.status, claimStatus(tc.claim))
			assert.Equal(t, tc.tone, claimTone(claimStatus(tc.claim)))
		})
	}
}

func TestClaimCells(t *testing.T) {
	pending := claim("default", "c", "5Gi", "", "uid-c", time.Minute)
	q, ok := claimCapacity(pending)
	require.True(t, ok)
	assert.Equal(t, "5Gi", q.String(), "the request while Pending")
	assert.Equal(t, "RWO", claimAccessModes(pending), "the requested modes while Pending")

	bound := claim("default", "c", "5Gi", "pvc-1", "uid-c", time.Minute)
	bound.Status.Capacity[corev1.ResourceStorage] = resource.MustParse("8Gi")
	bound.Status.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany, corev1.ReadWriteOnce}
	q, _ = claimCapacity(bound)
	assert.Equal(t, "8Gi", q.String(), "the volume's capacity once Bound (expanded, or larger than asked)")
	assert.Equal(t, "RWO,RWX", claimAccessModes(bound))

	none := pending.DeepCopy()
	none.Spec.Resources.Requests = nil
	_, ok = claimCapacity(none)
	assert.False(t, ok)

	assert.Equal(t, "standard", claimClass(pending))
	none.Spec.StorageClassName = nil
	assert.Equal(t, "", claimClass(none))
	none.Annotations = map[string]string{corev1.BetaStorageClassAnnotation: "old"}
	assert.Equal(t, "old", claimClass(none), "the beta annotation, as kubectl reads it")

	assert.Equal(t, []string{"standard (default)", "volumes.minik.dev", "Delete", "WaitForFirstConsumer", "true"}, classCells(standardClass()))
	bare := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "slow",
		Annotations: map[string]string{"storageclass.beta.kubernetes.io/is-default-class": "true"}}, Provisioner: "x"}
	assert.Equal(t, []string{"slow (default)", "x", "Delete", "Immediate", "false"}, classCells(bare), "the API's defaults")
	bare.Annotations = nil
	assert.Equal(t, "slow", classCells(bare)[0])
}

func TestClaimsInUse(t *testing.T) {
	a := mounting(mounting(pod("default", "a", "n", corev1.PodRunning, true, 0, time.Minute), "data", "shared"), "again", "shared")
	b := mounting(pod("default", "b", "n", corev1.PodRunning, true, 0, time.Minute), "data", "shared")
	other := mounting(pod("other", "c", "n", corev1.PodRunning, true, 0, time.Minute), "data", "shared")
	eph := pod("default", "e", "n", corev1.PodRunning, true, 0, time.Minute)
	eph.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	got := claimsInUse([]*corev1.Pod{b, a, other, eph})
	assert.Equal(t, map[string][]string{
		"default/shared":    {"a", "b"},
		"other/shared":      {"c"},
		"default/e-scratch": {"e"}, // a generic ephemeral volume's claim is POD-VOLUME
	}, got)
	assert.True(t, podUsesClaim(a, "default", "shared"))
	assert.False(t, podUsesClaim(other, "default", "shared"))
	assert.True(t, podUsesClaim(eph, "default", "e-scratch"))
}

// withObjects is the fixture cluster and more.
func withObjects(more ...runtime.Object) []runtime.Object {
	return append(clusterObjects(), more...)
}

func TestVolumesView(t *testing.T) {
	f := newFakeCluster(t, "default", withObjects(
		claim("default", "unused", "1Gi", "", "uid-unused", time.Hour),
		claim("elsewhere", "hidden", "1Gi", "", "uid-hidden", time.Hour),
		event("default", "scratch.1", corev1.EventTypeNormal, "WaitForFirstConsumer", "PersistentVolumeClaim", "scratch",
			"waiting for first consumer to be created before binding", time.Minute, 3),
	)...)
	m := newModel(t, f, testOptions("default"))
	// selectClaim filters the claims down to one, from no filter.
	selectClaim := func(name string) {
		t.Helper()
		press(t, m, "5", "esc")
		selectRow(t, m, "5", name)
	}
	press(t, m, "5")
	vv := m.tabs[4].(*volumesView)
	var names []string
	for _, r := range vv.t.rows {
		names = append(names, r.cells[0])
	}
	assert.Equal(t, []string{"batch-results", "scratch", "unused"}, names, "claims of namespace default only")
	out := screen(m)
	assert.Contains(t, out, "[5 Volumes]")
	assert.Regexp(t, `scratch +Pending +5Gi +RWO +standard +pending-ppppp`, out)
	assert.Regexp(t, `unused +Pending +1Gi +RWO +standard +<none>`, out)
	assert.Contains(t, out, "pvc-9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d  Released", "volumes are cluster-wide")
	assert.NotContains(t, out, "pvc-3f6d2c1e-8b0a-4c55-9e2f-1a7b9c0d4e21  Bound", "a bound volume shows on its claim's row")

	// enter: the pods that mount the claim, exactly; esc: all pods again.
	selectClaim("batch-results")
	press(t, m, "enter")
	out = screen(m)
	assert.Contains(t, out, "[2 Pods]")
	assert.Contains(t, out, "claim: default/batch-results  (1 of 7)")
	assert.Contains(t, out, "batch-zzzzz")
	assert.NotContains(t, out, "pending-ppppp")
	pv := m.tabs[1].(*podsView)
	press(t, m, "/", "z", "enter")
	assert.Contains(t, screen(m), "claim: default/batch-results · filter: z  (1 of 7)")
	press(t, m, "esc")
	assert.Nil(t, pv.t.scope, "esc clears the claim and the filter")
	assert.Len(t, pv.t.rows, 7)

	// The narrowing is live: a new pod that mounts the claim shows.
	selectClaim("batch-results")
	press(t, m, "enter")
	_, err := f.kc.CoreV1().Pods("default").Create(t.Context(),
		mounting(pod("default", "batch-again", "minik", corev1.PodRunning, true, 0, time.Minute), "results", "batch-results"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(f.Snapshot().Pods) == 8 }, 5*time.Second, 10*time.Millisecond)
	m.Update(snapshotMsg{snap: f.Snapshot()})
	assert.Contains(t, screen(m), "claim: default/batch-results  (2 of 8)")
	press(t, m, "5", "esc")
	require.NotNil(t, vv.t.selected())
	assert.Equal(t, "batch-again,batch-zzzzz", vv.t.selected().cells[6], "USED BY lists every pod, comma separated")

	// A claim no pod mounts says so rather than show an empty list.
	selectClaim("unused")
	press(t, m, "enter")
	assert.Contains(t, screen(m), "[5 Volumes]")
	assert.Contains(t, screen(m), "no pod uses claim default/unused")

	// d describes the claim, with its events, live.
	selectClaim("scratch")
	press(t, m, "d")
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 200})
	out = screen(m)
	assert.Contains(t, out, "› Describe persistentvolumeclaim/default/scratch")
	assert.Contains(t, out, "kind: PersistentVolumeClaim")
	assert.Contains(t, out, "phase: Pending")
	assert.Regexp(t, `Events\n +60s +Normal +WaitForFirstConsumer +waiting for first consumer`, out)
	c, err := f.kc.CoreV1().PersistentVolumeClaims("default").Get(t.Context(), "scratch", metav1.GetOptions{})
	require.NoError(t, err)
	c.Spec.VolumeName, c.Status.Phase = "pvc-new", corev1.ClaimBound
	_, err = f.kc.CoreV1().PersistentVolumeClaims("default").Update(t.Context(), c, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, c := range f.Snapshot().PersistentVolumeClaims {
			if c.Name == "scratch" {
				return c.Status.Phase == corev1.ClaimBound
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	m.Update(snapshotMsg{snap: f.Snapshot()})
	assert.Contains(t, screen(m), "phase: Bound")
}

func TestVolumesViewAllNamespaces(t *testing.T) {
	f := newFakeCluster(t, "", withObjects(claim("elsewhere", "data", "1Gi", "", "uid-data", time.Hour))...)
	m := newModel(t, f, testOptions(""))
	press(t, m, "5")
	out := screen(m)
	assert.Regexp(t, `NAMESPACE↑ +NAME +STATUS`, out)
	assert.Regexp(t, `elsewhere +data +Pending`, out)
	assert.Regexp(t, `default +scratch +Pending`, out)
}

func TestVolumesViewKeepsTheTableFirst(t *testing.T) {
	var more []runtime.Object
	for i := range 8 {
		more = append(more, volume(fmt.Sprintf("pvc-released-%d", i), "1Gi", corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain,
			"default", fmt.Sprintf("old-%d", i), time.Hour))
	}
	for i := range 20 {
		more = append(more, claim("default", fmt.Sprintf("claim-%02d", i), "1Gi", "", "", time.Hour))
	}
	f := newFakeCluster(t, "default", withObjects(more...)...)
	m := newModel(t, f, testOptions("default"))
	press(t, m, "5")
	out := screen(m)
	assert.Contains(t, out, "Volumes without a claim  9 of 10 volumes")
	assert.Contains(t, out, "… 4 more", "at most 5 volumes without a claim")
	lines := strings.Split(out, "\n")
	require.Len(t, lines, 30)
	header := -1
	for i, l := range lines {
		if strings.Contains(l, "Volumes without a claim") {
			header = i
		}
	}
	assert.GreaterOrEqual(t, header, 3+26/2, "the claims table keeps half of the 26 body lines")

	// At a narrow width the least telling columns go first; names stay whole.
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 30})
	out = screen(m)
	assert.Regexp(t, `\n  NAME +STATUS +CAPACITY +RECLAIM\n  pvc-9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d +Released +2Gi +Retain\n`, out)
}

func TestOverviewCountsClaims(t *testing.T) {
	lost := claim("default", "gone", "1Gi", "pvc-gone", "uid-gone", time.Hour)
	lost.Status.Phase = corev1.ClaimLost
	f := newFakeCluster(t, "default", withObjects(lost)...)
	m := newModel(t, f, testOptions("default"))
	assert.Contains(t, screen(m), "Claims  3: Bound 1 · Pending 1 · Lost 1  1 claim lost its volume")
}
