package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
)

func node(name, zone string, taints ...corev1.Taint) *corev1.Node {
	labels := map[string]string{"kubernetes.io/os": "linux"}
	if zone != "" {
		labels["topology.kubernetes.io/zone"] = zone
		labels["failwatch.io/probers"] = "true"
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
}

func TestPickNodeFollowsSelectorAffinityAndTaints(t *testing.T) {
	taint := corev1.Taint{Key: "failwatch.io/probers", Value: "true", Effect: corev1.TaintEffectNoSchedule}
	a := &agent{
		nodes: []*corev1.Node{node("general", ""), node("zone-a", "a", taint), node("zone-b", "b", taint)},
		pods:  informers.NewSharedInformerFactory(fake.NewClientset(), 0).Core().V1().Pods().Lister(),
	}
	pod := func(selector map[string]string, tolerations ...corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{NodeSelector: selector, Tolerations: tolerations}}
	}
	tolerate := corev1.Toleration{Key: "failwatch.io/probers", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoSchedule}
	cases := []struct {
		name string
		pod  *corev1.Pod
		want string
		why  string
	}{
		{"no constraints: the untainted node", pod(nil), "general", ""},
		{"zone b, tolerated", pod(map[string]string{"topology.kubernetes.io/zone": "b"}, tolerate), "zone-b", ""},
		{"zone b, not tolerated", pod(map[string]string{"topology.kubernetes.io/zone": "b"}), "",
			"0/3 nodes are available: 1 node(s) had untolerated taint {failwatch.io/probers: true}, 2 node(s) didn't match Pod's node affinity/selector."},
		{"a zone without nodes", pod(map[string]string{"topology.kubernetes.io/zone": "z"}, tolerate), "",
			"0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."},
	}
	affinity := pod(nil, tolerate)
	affinity.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}},
		}}},
	}}
	cases = append(cases, struct {
		name string
		pod  *corev1.Pod
		want string
		why  string
	}{"required node affinity", affinity, "zone-a", ""})
	for _, c := range cases {
		got, why := a.pickNode(c.pod)
		if got != c.want || why != c.why {
			t.Errorf("%s: got %q (%q), want %q (%q)", c.name, got, why, c.want, c.why)
		}
	}
}

func TestParseNodes(t *testing.T) {
	nodes, err := parseNodes("", "n1")
	if err != nil || len(nodes) != 1 || nodes[0].Name != "n1" {
		t.Fatalf("default: %v %v", nodes, err)
	}
	if _, err := parseNodes(`[{"name":"a"},{"name":"a"}]`, "n1"); err == nil {
		t.Fatal("duplicate names accepted")
	}
	nodes, err = parseNodes(`[{"name":"a","labels":{"topology.kubernetes.io/zone":"z"},"taints":[{"key":"k","value":"v","effect":"NoSchedule"}]}]`, "n1")
	if err != nil || nodes[0].Labels["topology.kubernetes.io/zone"] != "z" || nodes[0].Taints[0].Effect != corev1.TaintEffectNoSchedule {
		t.Fatalf("parsed: %+v %v", nodes, err)
	}
}
