package tui

import (
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// maxFreeVolumes bounds the "Volumes without a claim" section: released
// volumes can pile up, and the claims table comes first.
const maxFreeVolumes = 5

// volumesView lists PersistentVolumeClaims in a table. Under it, as plain
// sections, the PersistentVolumes bound to no claim (Available, Released,
// Failed) and the StorageClasses: cluster-wide and few.
type volumesView struct {
	s   *state
	t   table
	all bool
}

func newVolumesView(s *state) *volumesView {
	v := &volumesView{s: s, all: s.opts.Namespace == ""}
	// NAME keeps its width: VOLUME (pvc-<uid>) and USED BY give way first.
	cols := []column{{title: "NAME"}, {title: "STATUS"}, {title: "VOLUME", flex: true}, {title: "CAPACITY", right: true},
		{title: "ACCESS MODES"}, {title: "STORAGECLASS"}, {title: "USED BY", flex: true}, {title: "AGE", right: true}}
	if v.all {
		cols = append([]column{{title: "NAMESPACE"}}, cols...)
	}
	v.t = newTable("no PersistentVolumeClaims", 0, false, cols...)
	return v
}

func (v *volumesView) title() string     { return "Volumes" }
func (v *volumesView) capturing() bool   { return v.t.capturing() }
func (v *volumesView) clearFilter() bool { return v.t.clearFilter() }
func (v *volumesView) close()            {}

func (v *volumesView) refresh() {
	now := v.s.now()
	used := claimsInUse(v.s.snap.Pods)
	var rows []row
	for _, c := range v.s.snap.PersistentVolumeClaims {
		status := claimStatus(c)
		capacity, capN := "", int64(-1)
		if q, ok := claimCapacity(c); ok {
			capacity, capN = q.String(), q.Value()
		}
		class := claimClass(c)
		if class == "" {
			class = "<none>"
		}
		usedBy := strings.Join(used[c.Namespace+"/"+c.Name], ",")
		if usedBy == "" {
			usedBy = "<none>"
		}
		cells := []string{c.Name, status, c.Spec.VolumeName, capacity, claimAccessModes(c), class, usedBy, age(now, c.CreationTimestamp)}
		keys := []sortKey{str(c.Name), str(status), str(c.Spec.VolumeName), numi(capN), str(cells[4]), str(class), str(usedBy),
			num(-float64(c.CreationTimestamp.Unix()))}
		if v.all {
			cells = append([]string{c.Namespace}, cells...)
			keys = append([]sortKey{str(c.Namespace + "/" + c.Name)}, keys...)
		}
		rows = append(rows, row{key: c.Namespace + "/" + c.Name, cells: cells, sort: keys, tone: claimTone(status), obj: c})
	}
	v.t.setRows(rows)
}

func (v *volumesView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || v.t.handleKey(k, v.s.keys) {
		return nil
	}
	r := v.t.selected()
	if r == nil {
		return nil
	}
	c := r.obj.(*corev1.PersistentVolumeClaim)
	switch {
	case key.Matches(k, v.s.keys.Enter):
		ref := c.Namespace + "/" + c.Name
		if len(claimsInUse(v.s.snap.Pods)[ref]) == 0 {
			return emit(flashMsg{text: "no pod uses claim " + ref})
		}
		ns, name := c.Namespace, c.Name
		return emit(showPodsMsg{scope: &scope{name: "claim: " + ref, keep: func(obj any) bool {
			p, ok := obj.(*corev1.Pod)
			return ok && podUsesClaim(p, ns, name)
		}}})
	case key.Matches(k, v.s.keys.Describe):
		return emit(openDescribeMsg{obj: describeClaim(c)})
	}
	return nil
}

// view draws the claims table, then the sections; the table keeps at least
// half the height and is no taller than its rows, so the sections follow
// it.
func (v *volumesView) view(width, height int) string {
	st := &v.s.styles
	extra := v.sections(width)
	if limit := height / 2; len(extra) > limit {
		extra = extra[:limit]
		if limit > 0 {
			extra[limit-1] = st.Dim.Render("  …")
		}
	}
	if len(extra) == 0 {
		return v.t.view(st, width, height)
	}
	need := 1 + max(len(v.t.rows), 1)
	if v.t.filtering || v.t.filter != "" || v.t.scope != nil {
		need++
	}
	tableH := max(min(need, height-len(extra)-1), 1)
	return v.t.view(st, width, tableH) + "\n\n" + strings.Join(extra, "\n")
}

// sections are the lines under the claims table: volumes without a claim,
// then StorageClasses.
func (v *volumesView) sections(width int) []string {
	st := &v.s.styles
	snap := v.s.snap
	now := v.s.now()
	var out []string

	var free []*corev1.PersistentVolume
	for _, pv := range snap.PersistentVolumes {
		if pv.Status.Phase != corev1.VolumeBound {
			free = append(free, pv)
		}
	}
	sort.Slice(free, func(i, j int) bool { return free[i].Name < free[j].Name })
	out = append(out, st.Section.Render("Volumes without a claim")+
		fmt.Sprintf("  %d of %d volumes", len(free), len(snap.PersistentVolumes)))
	if len(free) > 0 {
		// The name is what to delete or reuse the volume by: no column
		// shrinks, and the least telling ones come last, to be dropped
		// first on a narrow screen.
		cols := []column{{title: "NAME"}, {title: "STATUS"}, {title: "CAPACITY", right: true}, {title: "RECLAIM"},
			{title: "CLAIM"}, {title: "AGE", right: true}, {title: "STORAGECLASS"}, {title: "ACCESS MODES"}}
		var rows [][]string
		var tones []tone
		for i, pv := range free {
			if i == maxFreeVolumes {
				rows = append(rows, []string{fmt.Sprintf("… %d more", len(free)-maxFreeVolumes)})
				tones = append(tones, toneDim)
				break
			}
			claim, class := "", volumeClass(pv)
			if r := pv.Spec.ClaimRef; r != nil {
				claim = r.Namespace + "/" + r.Name
			}
			if class == "" {
				class = "<none>"
			}
			q := pv.Spec.Capacity[corev1.ResourceStorage]
			status := volumeStatus(pv)
			rows = append(rows, []string{pv.Name, status, q.String(), string(pv.Spec.PersistentVolumeReclaimPolicy),
				claim, age(now, pv.CreationTimestamp), class, accessModes(pv.Spec.AccessModes)})
			t := toneNormal
			switch pv.Status.Phase {
			case corev1.VolumeFailed:
				t = toneBad
			case corev1.VolumeReleased:
				t = toneWarn
			}
			tones = append(tones, t)
		}
		out = append(out, staticTable(st, cols, rows, tones, width)...)
	}
	out = append(out, "")

	classes := append([]*storagev1.StorageClass(nil), snap.StorageClasses...)
	sort.Slice(classes, func(i, j int) bool { return classes[i].Name < classes[j].Name })
	out = append(out, st.Section.Render("StorageClasses")+fmt.Sprintf("  %d", len(classes)))
	if len(classes) == 0 {
		out = append(out, st.Dim.Render("  none"))
		return out
	}
	cols := []column{{title: "NAME"}, {title: "PROVISIONER", flex: true}, {title: "RECLAIM"}, {title: "BINDING MODE"},
		{title: "EXPANSION"}, {title: "AGE", right: true}}
	var rows [][]string
	for _, sc := range classes {
		rows = append(rows, append(classCells(sc), age(now, sc.CreationTimestamp)))
	}
	return append(out, staticTable(st, cols, rows, nil, width)...)
}
