package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// describable is an object the describe view can show.
type describable struct {
	kind     string
	ns, name string
	uid      types.UID
	obj      runtime.Object
}

func (d describable) ref() string {
	if d.ns == "" {
		return strings.ToLower(d.kind) + "/" + d.name
	}
	return strings.ToLower(d.kind) + "/" + d.ns + "/" + d.name
}

// Informer objects have no TypeMeta; the YAML should read like kubectl's.
func describePod(p *corev1.Pod) describable {
	c := p.DeepCopy()
	c.APIVersion, c.Kind, c.ManagedFields = "v1", "Pod", nil
	return describable{kind: "Pod", ns: p.Namespace, name: p.Name, uid: p.UID, obj: c}
}

func describeDeployment(d *appsv1.Deployment) describable {
	c := d.DeepCopy()
	c.APIVersion, c.Kind, c.ManagedFields = "apps/v1", "Deployment", nil
	return describable{kind: "Deployment", ns: d.Namespace, name: d.Name, uid: d.UID, obj: c}
}

func describeReplicaSet(rs *appsv1.ReplicaSet) describable {
	c := rs.DeepCopy()
	c.APIVersion, c.Kind, c.ManagedFields = "apps/v1", "ReplicaSet", nil
	return describable{kind: "ReplicaSet", ns: rs.Namespace, name: rs.Name, uid: rs.UID, obj: c}
}

func describeNode(n *corev1.Node) describable {
	c := n.DeepCopy()
	c.APIVersion, c.Kind, c.ManagedFields = "v1", "Node", nil
	return describable{kind: "Node", name: n.Name, uid: n.UID, obj: c}
}

func describeClaim(c *corev1.PersistentVolumeClaim) describable {
	cp := c.DeepCopy()
	cp.APIVersion, cp.Kind, cp.ManagedFields = "v1", "PersistentVolumeClaim", nil
	return describable{kind: "PersistentVolumeClaim", ns: c.Namespace, name: c.Name, uid: c.UID, obj: cp}
}

func describeEvent(e *corev1.Event) describable {
	c := e.DeepCopy()
	c.APIVersion, c.Kind, c.ManagedFields = "v1", "Event", nil
	return describable{kind: "Event", ns: e.Namespace, name: e.Name, uid: e.UID, obj: c}
}

// describeView shows an object's YAML and the events about it, kept live:
// each refresh looks the object up again.
type describeView struct {
	s  *state
	d  describable
	vp viewport.Model
	// gone is set once the object left the caches.
	gone bool
}

func newDescribeView(s *state, d describable) *describeView {
	v := &describeView{s: s, d: d, vp: viewport.New()}
	v.refresh()
	return v
}

func (v *describeView) title() string   { return "Describe " + v.d.ref() }
func (v *describeView) capturing() bool { return false }
func (v *describeView) close()          {}

// current finds the object in the latest snapshot.
func (v *describeView) current() (describable, bool) {
	snap := v.s.snap
	switch v.d.kind {
	case "Pod":
		for _, p := range snap.Pods {
			if p.UID == v.d.uid {
				return describePod(p), true
			}
		}
	case "Deployment":
		for _, d := range snap.Deployments {
			if d.UID == v.d.uid {
				return describeDeployment(d), true
			}
		}
	case "ReplicaSet":
		for _, rs := range snap.ReplicaSets {
			if rs.UID == v.d.uid {
				return describeReplicaSet(rs), true
			}
		}
	case "Node":
		for _, n := range snap.Nodes {
			if n.UID == v.d.uid {
				return describeNode(n), true
			}
		}
	case "PersistentVolumeClaim":
		for _, c := range snap.PersistentVolumeClaims {
			if c.UID == v.d.uid {
				return describeClaim(c), true
			}
		}
	case "Event":
		for _, e := range snap.Events {
			if e.UID == v.d.uid {
				return describeEvent(e), true
			}
		}
	}
	return v.d, false
}

func (v *describeView) refresh() {
	d, ok := v.current()
	v.d, v.gone = d, !ok
	var b strings.Builder
	if v.gone {
		b.WriteString(v.s.styles.Bad.Render(fmt.Sprintf("%s is gone; last seen:", v.d.ref())) + "\n\n")
	}
	y, err := yaml.Marshal(v.d.obj)
	if err != nil {
		y = []byte(fmt.Sprintf("cannot render YAML: %v", err))
	}
	b.Write(y)
	if v.d.kind != "Event" {
		b.WriteString("\n" + v.s.styles.Section.Render("Events") + "\n")
		n := 0
		for _, e := range sortEventsNewestFirst(v.s.snap.Events) {
			io := e.InvolvedObject
			if io.UID != v.d.uid && (io.Kind != v.d.kind || io.Name != v.d.name || io.Namespace != v.d.ns) {
				continue
			}
			n++
			fmt.Fprintf(&b, "  %-6s %-8s %-20s %s\n", age(v.s.now(), metaTime(eventTime(e))), e.Type, e.Reason, oneLine(e.Message))
		}
		if n == 0 {
			b.WriteString("  <none>\n")
		}
	}
	v.vp.SetContent(strings.TrimRight(b.String(), "\n"))
}

func (v *describeView) update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil
	}
	keys := v.s.keys
	switch {
	case key.Matches(k, keys.Up):
		v.vp.ScrollUp(1)
	case key.Matches(k, keys.Down):
		v.vp.ScrollDown(1)
	case key.Matches(k, keys.PageUp):
		v.vp.PageUp()
	case key.Matches(k, keys.PageDown):
		v.vp.PageDown()
	case key.Matches(k, keys.Top):
		v.vp.GotoTop()
	case key.Matches(k, keys.Bottom):
		v.vp.GotoBottom()
	case key.Matches(k, keys.Left):
		v.vp.ScrollLeft(4)
	case key.Matches(k, keys.Right):
		v.vp.ScrollRight(4)
	}
	return nil
}

func (v *describeView) view(width, height int) string {
	v.vp.SetWidth(width)
	v.vp.SetHeight(height)
	return v.vp.View()
}
