package main

// Several nodes from one agent, and the scheduling the agent does for them. The nodes are
// Node objects only (every pod runs as a local process of this agent whatever its node), so a
// test gets zones and taints without more processes. Binding follows what kube-scheduler's
// filters NodeAffinity and TaintToleration decide, with the same library code
// (k8s.io/component-helpers/scheduling/corev1): a pod goes only to a node that matches its
// nodeSelector and required node affinity and whose NoSchedule/NoExecute taints it tolerates;
// among those, to the node with the fewest pods (ties: the order of --nodes). A pod that fits
// no node stays Pending with PodScheduled=False, reason Unschedulable, as the scheduler leaves
// it. Not modelled: resources (nodes have room for everything), pod (anti-)affinity, topology
// spread constraints, preferred terms.

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// nodeSpec is one Node the agent registers and runs pods for.
type nodeSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Taints []corev1.Taint    `json:"taints,omitempty"`
}

// parseNodes reads --nodes: a JSON array of {name, labels, taints}; empty: the one node name.
func parseNodes(text, defaultName string) ([]nodeSpec, error) {
	if strings.TrimSpace(text) == "" {
		return []nodeSpec{{Name: defaultName}}, nil
	}
	var nodes []nodeSpec
	if err := json.Unmarshal([]byte(text), &nodes); err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("want at least one node")
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.Name == "" || seen[n.Name] {
			return nil, fmt.Errorf("node names must be set and unique (got %q)", n.Name)
		}
		seen[n.Name] = true
	}
	return nodes, nil
}

// registerNode creates (or takes over) the Node object with the spec's labels and taints,
// Ready and without the not-ready taint that the TaintNodesByCondition admission plugin puts
// on new nodes. No node lifecycle controller runs in this cluster, so the node stays Ready
// until it is deleted.
func registerNode(ctx context.Context, cs kubernetes.Interface, spec nodeSpec) (*corev1.Node, error) {
	nodes := cs.CoreV1().Nodes()
	nodeLabels := map[string]string{
		"kubernetes.io/hostname": spec.Name, "kubernetes.io/os": runtime.GOOS, "kubernetes.io/arch": runtime.GOARCH,
		"failwatch.io/node-agent": "true",
	}
	for k, v := range spec.Labels {
		nodeLabels[k] = v
	}
	node, err := nodes.Get(ctx, spec.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = nodes.Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: spec.Name, Labels: nodeLabels},
			Spec:       corev1.NodeSpec{Taints: spec.Taints},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, err
	}
	taints := append([]corev1.Taint{}, spec.Taints...)
	for _, t := range node.Spec.Taints {
		if t.Key != corev1.TaintNodeNotReady && !hasTaint(taints, t) {
			taints = append(taints, t)
		}
	}
	node.Labels = nodeLabels
	node.Spec.Taints = taints
	if node, err = nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		return nil, err
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	node.Status = corev1.NodeStatus{
		Capacity: capacity, Allocatable: capacity,
		Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "failwatch node agent is running", LastHeartbeatTime: now, LastTransitionTime: now,
		}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: spec.Name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
			KubeletVersion: "failwatch-node-agent", ContainerRuntimeVersion: "failwatch://local-processes",
		},
	}
	return nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
}

func hasTaint(taints []corev1.Taint, t corev1.Taint) bool {
	for _, have := range taints {
		if have.Key == t.Key && have.Effect == t.Effect {
			return true
		}
	}
	return false
}

// fitProblem says why the pod cannot go to the node ("" if it can), in the words of the
// scheduler's NodeAffinity and TaintToleration filters.
func fitProblem(pod *corev1.Pod, node *corev1.Node) string {
	if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); !ok {
		return "didn't match Pod's node affinity/selector"
	}
	taint, untolerated := corev1helpers.FindMatchingUntoleratedTaint(klog.Background(), node.Spec.Taints, pod.Spec.Tolerations,
		func(t *corev1.Taint) bool {
			return t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute
		}, false)
	if untolerated {
		return fmt.Sprintf("had untolerated taint {%s: %s}", taint.Key, taint.Value)
	}
	return ""
}

// pickNode returns the node for the pod, or "" and the scheduler-style reason why none fits.
func (a *agent) pickNode(pod *corev1.Pod) (string, string) {
	load := map[string]int{}
	if pods, err := a.pods.List(labels.Everything()); err == nil {
		for _, p := range pods {
			if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				load[p.Spec.NodeName]++
			}
		}
	}
	best := ""
	problems := map[string]int{}
	for _, node := range a.nodes {
		if problem := fitProblem(pod, node); problem != "" {
			problems[problem]++
			continue
		}
		if best == "" || load[node.Name] < load[best] {
			best = node.Name
		}
	}
	if best != "" {
		return best, ""
	}
	reasons := make([]string, 0, len(problems))
	for problem, n := range problems {
		reasons = append(reasons, fmt.Sprintf("%d node(s) %s", n, problem))
	}
	sort.Strings(reasons)
	return "", fmt.Sprintf("0/%d nodes are available: %s.", len(a.nodes), strings.Join(reasons, ", "))
}

// markUnschedulable sets PodScheduled=False (reason Unschedulable) unless it already says so.
func (a *agent) markUnschedulable(ctx context.Context, pod *corev1.Pod, message string) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message == message {
			return nil
		}
	}
	updated := pod.DeepCopy()
	var conditions []corev1.PodCondition
	for _, c := range updated.Status.Conditions {
		if c.Type != corev1.PodScheduled {
			conditions = append(conditions, c)
		}
	}
	updated.Status.Conditions = append(conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: message, LastTransitionTime: metav1.Now(),
	})
	_, err := a.cs.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func (a *agent) ownsNode(name string) bool {
	for _, node := range a.nodes {
		if node.Name == name {
			return true
		}
	}
	return false
}
