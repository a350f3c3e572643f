// Command failwatch-node-agent is a test stand-in for a kubelet (and a scheduler) for the
// development control plane. It registers one Node or several (--nodes, e.g. one per zone),
// binds every unscheduled Pod to a node it fits (nodes.go), and runs the containers of the Pods
// bound to its nodes as local processes. See README.md for what it supports and what it ignores.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

type agent struct {
	cs         kubernetes.Interface
	nodes      []*corev1.Node
	logDir     string
	volumeDir  string
	defaultCmd []string
	imagePaths []pathMapping
	// apiServer and apiServerCA go into the kubeconfig of a pod's ServiceAccount.
	apiServer   string
	apiServerCA []byte
	pods        corelisters.PodLister
	queue       workqueue.TypedRateLimitingInterface[string]
	ips         *ipPool

	mu   sync.Mutex
	runs map[string]*podRun // by namespace/name
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a user allowed to manage nodes and pods")
	nodeName := flag.String("node-name", "failwatch-node-1", "name of the Node to register (without --nodes)")
	nodesJSON := flag.String("nodes", "",
		`Nodes to register instead of --node-name, a JSON array of {"name", "labels", "taints"}, e.g. one per zone with label topology.kubernetes.io/zone`)
	logDir := flag.String("log-dir", "", "container logs go to DIR/<namespace>_<pod>_<uid>/<container>.log (required)")
	volumeDir := flag.String("volume-dir", "", "Secret volumes go to DIR/<namespace>_<pod>_<uid>/<volume> (default: volumes next to --log-dir)")
	podCIDR := flag.String("pod-cidr", "127.0.32.0/19", "loopback range the pod IPs are taken from")
	defaultCmd := flag.String("default-command", os.Getenv("FAILWATCH_NODE_DEFAULT_COMMAND"),
		"command run with a container's args when it has no command (a JSON array, or words split on spaces); default $FAILWATCH_NODE_DEFAULT_COMMAND")
	pathMap := flag.String("image-path-map", os.Getenv("FAILWATCH_NODE_IMAGE_PATH_MAP"),
		"IMAGEPATH=LOCALPATH[,...]: image paths in a container's command, args and workingDir mapped onto this machine (e.g. /app=<checkout>); default $FAILWATCH_NODE_IMAGE_PATH_MAP")
	flag.Parse()
	if *logDir == "" || *kubeconfig == "" {
		log.Fatal("node-agent: --kubeconfig and --log-dir are required")
	}
	if *volumeDir == "" {
		*volumeDir = filepath.Join(filepath.Dir(filepath.Clean(*logDir)), "volumes")
	}
	cmd, err := parseCommand(*defaultCmd)
	if err != nil {
		log.Fatalf("node-agent: --default-command: %v", err)
	}
	imagePaths, err := parsePathMap(*pathMap)
	if err != nil {
		log.Fatalf("node-agent: --image-path-map: %v", err)
	}
	specs, err := parseNodes(*nodesJSON, *nodeName)
	if err != nil {
		log.Fatalf("node-agent: --nodes: %v", err)
	}
	ips, err := newIPPool(*podCIDR)
	if err != nil {
		log.Fatalf("node-agent: --pod-cidr: %v", err)
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("node-agent: %v", err)
	}
	config.QPS, config.Burst = 50, 100
	cs := kubernetes.NewForConfigOrDie(config)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	var nodes []*corev1.Node
	for _, spec := range specs {
		node, err := registerNode(ctx, cs, spec)
		if err != nil {
			log.Fatalf("node-agent: registering node %s: %v", spec.Name, err)
		}
		nodes = append(nodes, node)
	}

	factory := informers.NewSharedInformerFactory(cs, 0)
	podInformer := factory.Core().V1().Pods()
	a := &agent{
		cs: cs, nodes: nodes, logDir: *logDir, volumeDir: *volumeDir, defaultCmd: cmd, ips: ips, imagePaths: imagePaths,
		apiServer: config.Host, apiServerCA: config.CAData,
		pods: podInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 10*time.Second)),
		runs: map[string]*podRun{},
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }, DeleteFunc: enqueue,
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	log.Printf("node-agent: nodes %s ready, logs in %s, default command %q", strings.Join(names, ", "), *logDir, cmd)

	for range 2 {
		go func() {
			for a.processNext(ctx) {
			}
		}()
	}
	<-ctx.Done()
	a.queue.ShutDown()
	a.stopAll(5 * time.Second)
	log.Print("node-agent: stopped")
}

func (a *agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		log.Printf("node-agent: %s: %v (retrying)", key, err)
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// sync brings one pod key to the state its object asks for. It never blocks on processes:
// starting and stopping them happens in goroutines.
func (a *agent) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Gone without waiting for us (force deletion): kill at once.
		if run := a.takeRun(key, ""); run != nil {
			go run.stop(0)
		}
		return nil
	}
	if err != nil {
		return err
	}

	if pod.Spec.NodeName == "" {
		if pod.DeletionTimestamp != nil || !isDefaultScheduler(pod) {
			return nil
		}
		nodeName, problem := a.pickNode(pod)
		if nodeName == "" {
			log.Printf("node-agent: %s unschedulable: %s", key, problem)
			return a.markUnschedulable(ctx, pod, problem)
		}
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: nodeName},
		}
		err := a.cs.CoreV1().Pods(ns).Bind(ctx, binding, metav1.CreateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // bound or deleted meanwhile
		}
		return err
	}
	if !a.ownsNode(pod.Spec.NodeName) {
		return nil
	}
	// A run under this key from an earlier pod of the same name is stale.
	if stale := a.takeRun(key, pod.UID); stale != nil {
		go stale.stop(0)
	}

	a.mu.Lock()
	run := a.runs[key]
	a.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		go a.finishDeletion(ctx, key, pod, run)
		return nil
	}
	if run != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil
	}
	ip, err := a.ips.allocate(pod.Status.PodIP)
	if err != nil {
		return err
	}
	run = newPodRun(a, pod, ip)
	a.mu.Lock()
	a.runs[key] = run
	a.mu.Unlock()
	log.Printf("node-agent: starting pod %s (uid %s) with IP %s", key, pod.UID, ip)
	run.start(ctx)
	return nil
}

// finishDeletion stops the pod's processes within its grace period, then removes the object
// (what a kubelet does for a pod with a deletionTimestamp).
func (a *agent) finishDeletion(ctx context.Context, key string, pod *corev1.Pod, run *podRun) {
	if run != nil {
		grace := 30 * time.Second
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		if !run.stop(grace) {
			return // another sync is already stopping it
		}
		a.takeRun(key, "")
		log.Printf("node-agent: stopped pod %s", key)
	}
	zero := int64(0)
	err := a.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		log.Printf("node-agent: deleting pod %s: %v", key, err)
		a.queue.AddRateLimited(key)
	}
}

// takeRun removes and returns the run under key, unless its pod has the given UID.
func (a *agent) takeRun(key string, keepUID types.UID) *podRun {
	a.mu.Lock()
	defer a.mu.Unlock()
	run := a.runs[key]
	if run == nil || (keepUID != "" && run.pod.UID == keepUID) {
		return nil
	}
	delete(a.runs, key)
	a.ips.release(run.ip)
	return run
}

func (a *agent) stopAll(grace time.Duration) {
	a.mu.Lock()
	runs := a.runs
	a.runs = map[string]*podRun{}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run.stop(grace) })
	}
	wg.Wait()
}

func isDefaultScheduler(pod *corev1.Pod) bool {
	return pod.Spec.SchedulerName == "" || pod.Spec.SchedulerName == corev1.DefaultSchedulerName
}

func parseCommand(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") {
		var words []string
		err := json.Unmarshal([]byte(s), &words)
		return words, err
	}
	return strings.Fields(s), nil
}

// ipPool hands out distinct loopback addresses, round robin so that a just-released
// address is not reused at once. Addresses ending in .0 or .255 are skipped.
type ipPool struct {
	mu    sync.Mutex
	base  uint32
	size  uint32
	next  uint32
	inUse map[string]bool
}

func newIPPool(cidr string) (*ipPool, error) {
	var a, b, c, d, bits uint32
	if _, err := fmt.Sscanf(cidr, "%d.%d.%d.%d/%d", &a, &b, &c, &d, &bits); err != nil || bits > 30 || a != 127 {
		return nil, errors.New("want a 127.x.y.z/n range with n <= 30")
	}
	mask := ^uint32(0) << (32 - bits)
	return &ipPool{base: (a<<24 | b<<16 | c<<8 | d) & mask, size: 1 << (32 - bits), inUse: map[string]bool{}}, nil
}

func (p *ipPool) allocate(preferred string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := uint32(0); i < p.size; i++ {
		ip := p.base + (p.next+i)%p.size
		s := fmt.Sprintf("%d.%d.%d.%d", ip>>24, ip>>16&255, ip>>8&255, ip&255)
		if preferred != "" {
			s = preferred // keep the address a pod had before an agent restart
		} else if ip&255 == 0 || ip&255 == 255 || p.inUse[s] {
			continue
		} else {
			p.next = (p.next + i + 1) % p.size
		}
		p.inUse[s] = true
		return s, nil
	}
	return "", errors.New("no free pod IP")
}

func (p *ipPool) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inUse, ip)
}
