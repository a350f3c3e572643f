package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podRun is one pod's containers running as local processes, each in its own process group.
type podRun struct {
	a       *agent
	pod     *corev1.Pod // as it was when the agent started it
	ip      string
	logDir  string
	started metav1.Time

	stopping chan struct{} // closed by stop
	done     chan struct{} // closed when no container will run again
	reportMu sync.Mutex    // serialises status reports, so an older one never overwrites a newer

	mu         sync.Mutex
	mountMsgs  map[string]bool // FailedMount messages already reported as Events
	stopped    bool
	containers []*container
	conditions map[corev1.PodConditionType]corev1.PodCondition
}

type container struct {
	spec     corev1.Container
	pid      int // of the running process (its process group id too), 0 if none
	finished bool
	status   corev1.ContainerStatus
}

func newPodRun(a *agent, pod *corev1.Pod, ip string) *podRun {
	r := &podRun{
		a: a, pod: pod, ip: ip, started: metav1.Now(),
		logDir:   filepath.Join(a.logDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		stopping: make(chan struct{}), done: make(chan struct{}),
		conditions: map[corev1.PodConditionType]corev1.PodCondition{},
	}
	for _, spec := range pod.Spec.Containers {
		r.containers = append(r.containers, &container{spec: spec, status: corev1.ContainerStatus{
			Name: spec.Name, Image: spec.Image, ImageID: "failwatch://" + spec.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
		}})
	}
	return r
}

func (r *podRun) start(ctx context.Context) {
	if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		log.Printf("node-agent: %v", err)
	}
	r.report(ctx)
	var wg sync.WaitGroup
	for _, c := range r.containers {
		wg.Go(func() { r.runContainer(ctx, c) })
	}
	go func() {
		wg.Wait()
		_ = os.RemoveAll(r.a.podVolumeDir(r.pod)) // no container of the pod will run again
		close(r.done)
		r.report(ctx)
	}()
}

// runContainer runs one container until it is done for good: restartPolicy decides after
// each exit, with a doubling back-off; a configuration error (a missing Secret key, say) is
// retried like a kubelet does, whatever the policy.
func (r *podRun) runContainer(ctx context.Context, c *container) {
	backoff := time.Second
	for {
		mounts, err := r.a.mountSecretVolumes(ctx, r.pod, c.spec)
		var mountErr *mountError
		if errors.As(err, &mountErr) {
			r.failedMount(ctx, mountErr.Error())
			if r.sleep(2 * time.Second) {
				break
			}
			continue
		}
		var argv, env []string
		var workDir string
		if err == nil {
			argv, env, workDir, err = r.a.resolve(ctx, r.pod, r.ip, c.spec, mounts)
		}
		if err != nil {
			r.setState(ctx, c, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "CreateContainerConfigError", Message: err.Error(),
			}})
			if r.sleep(2 * time.Second) {
				break
			}
			continue
		}
		exit := r.exec(ctx, c, argv, env, workDir)
		if exit == nil {
			break // stopped before it started
		}
		log.Printf("node-agent: pod %s/%s container %s exited with %d", r.pod.Namespace, r.pod.Name, c.spec.Name, exit.ExitCode)
		policy := r.pod.Spec.RestartPolicy
		if policy == corev1.RestartPolicyNever || (policy == corev1.RestartPolicyOnFailure && exit.ExitCode == 0) {
			break
		}
		r.mu.Lock()
		c.status.LastTerminationState = corev1.ContainerState{Terminated: exit}
		c.status.RestartCount++
		r.mu.Unlock()
		r.setState(ctx, c, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff", Message: fmt.Sprintf("back-off %s restarting the container", backoff),
		}})
		if r.sleep(backoff) {
			break
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	r.mu.Lock()
	c.finished = true
	r.mu.Unlock()
}

// exec runs the container's process once, its output appended to its log file, and returns
// how it ended; nil if the pod was stopped before the process could start.
func (r *podRun) exec(ctx context.Context, c *container, argv, env []string, workDir string) *corev1.ContainerStateTerminated {
	logFile, err := os.OpenFile(filepath.Join(r.logDir, c.spec.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return r.terminated(ctx, c, 128, "StartError", err.Error(), metav1.Now())
	}
	defer logFile.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, workDir, logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return r.terminated(ctx, c, 128, "StartError", err.Error(), metav1.Now())
	}
	startedAt := metav1.Now()
	c.pid = cmd.Process.Pid
	c.status.ContainerID = fmt.Sprintf("failwatch://%d", c.pid)
	r.mu.Unlock()
	r.setState(ctx, c, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}})

	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever the container left behind
	r.mu.Lock()
	c.pid = 0
	r.mu.Unlock()
	code, reason, message := int32(0), "Completed", ""
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		reason = "Error"
		ws := exitErr.Sys().(syscall.WaitStatus)
		code = int32(ws.ExitStatus())
		if ws.Signaled() {
			code, message = 128+int32(ws.Signal()), ws.Signal().String()
		}
	} else if err != nil {
		code, reason, message = 128, "Error", err.Error()
	}
	return r.terminated(ctx, c, code, reason, message, startedAt)
}

func (r *podRun) terminated(ctx context.Context, c *container, code int32, reason, message string, startedAt metav1.Time) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, Message: message, StartedAt: startedAt, FinishedAt: metav1.Now(),
		ContainerID: c.status.ContainerID,
	}
	r.setState(ctx, c, corev1.ContainerState{Terminated: t})
	return t
}

func (r *podRun) setState(ctx context.Context, c *container, state corev1.ContainerState) {
	r.mu.Lock()
	c.status.State = state
	running := state.Running != nil
	c.status.Started, c.status.Ready = &running, running
	r.mu.Unlock()
	r.report(ctx)
}

// sleep waits for d and reports whether the pod is being stopped.
func (r *podRun) sleep(d time.Duration) bool {
	select {
	case <-r.stopping:
		return true
	case <-time.After(d):
		return false
	}
}

// stop sends SIGTERM to every container's process group, SIGKILL after the grace period, and
// returns once no container runs any more. It returns false if the pod was already stopping.
func (r *podRun) stop(grace time.Duration) bool {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false
	}
	r.stopped = true
	close(r.stopping)
	r.mu.Unlock()
	r.signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(grace):
		r.signal(syscall.SIGKILL)
		<-r.done
	}
	return true
}

func (r *podRun) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.containers {
		if c.pid != 0 {
			_ = syscall.Kill(-c.pid, sig)
		}
	}
}

// report writes the pod's status (a merge patch replacing the lists it names).
func (r *podRun) report(ctx context.Context) {
	r.reportMu.Lock()
	defer r.reportMu.Unlock()
	r.mu.Lock()
	status := r.statusLocked()
	r.mu.Unlock()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"uid": r.pod.UID}, "status": status})
	for attempt := 0; ; attempt++ {
		_, err := r.a.cs.CoreV1().Pods(r.pod.Namespace).Patch(
			ctx, r.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		if err == nil || apierrors.IsNotFound(err) || apierrors.IsConflict(err) || ctx.Err() != nil {
			return
		}
		if attempt == 4 {
			log.Printf("node-agent: status of pod %s/%s: %v", r.pod.Namespace, r.pod.Name, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// statusLocked derives the pod status from the containers: Pending until one has started,
// Running while one runs or will be restarted, then Succeeded if every container's last run
// exited 0, else Failed.
func (r *podRun) statusLocked() corev1.PodStatus {
	allFinished, allSucceeded, allReady, anyStarted := true, true, true, false
	statuses := make([]corev1.ContainerStatus, 0, len(r.containers))
	for _, c := range r.containers {
		s := c.status
		allFinished = allFinished && c.finished
		allReady = allReady && s.Ready
		anyStarted = anyStarted || s.ContainerID != ""
		last := s.State.Terminated
		if last == nil {
			last = s.LastTerminationState.Terminated
		}
		allSucceeded = allSucceeded && last != nil && last.ExitCode == 0
		statuses = append(statuses, s)
	}
	phase := corev1.PodPending
	switch {
	case allFinished && allSucceeded:
		phase = corev1.PodSucceeded
	case allFinished:
		phase = corev1.PodFailed
	case anyStarted:
		phase = corev1.PodRunning
	}
	ready, reason := corev1.ConditionFalse, "ContainersNotReady"
	if allReady {
		ready, reason = corev1.ConditionTrue, ""
	} else if allFinished {
		reason = "PodCompleted"
	}
	r.setCondition(corev1.PodScheduled, corev1.ConditionTrue, "")
	r.setCondition(corev1.PodReadyToStartContainers, corev1.ConditionTrue, "")
	r.setCondition(corev1.PodInitialized, corev1.ConditionTrue, "")
	r.setCondition(corev1.ContainersReady, ready, reason)
	r.setCondition(corev1.PodReady, ready, reason)
	var conditions []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers,
		corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		conditions = append(conditions, r.conditions[t])
	}
	return corev1.PodStatus{
		Phase: phase, Conditions: conditions, StartTime: &r.started,
		HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP: r.ip, PodIPs: []corev1.PodIP{{IP: r.ip}},
		ContainerStatuses: statuses,
	}
}

func (r *podRun) setCondition(t corev1.PodConditionType, status corev1.ConditionStatus, reason string) {
	c, ok := r.conditions[t]
	if !ok || c.Status != status {
		c.LastTransitionTime = metav1.Now()
	}
	c.Type, c.Status, c.Reason = t, status, reason
	r.conditions[t] = c
}

// failedMount reports a volume that cannot be set up as the kubelet does: the container stays
// ContainerCreating and a Warning Event FailedMount names the problem (once per message here;
// a kubelet counts repeats in the same Event).
func (r *podRun) failedMount(ctx context.Context, message string) {
	r.mu.Lock()
	if r.mountMsgs == nil {
		r.mountMsgs = map[string]bool{}
	}
	seen := r.mountMsgs[message]
	r.mountMsgs[message] = true
	r.mu.Unlock()
	if seen {
		return
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: r.pod.Name + ".", Namespace: r.pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: r.pod.Namespace, Name: r.pod.Name, UID: r.pod.UID,
		},
		Reason: "FailedMount", Message: message, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubelet", Host: r.pod.Spec.NodeName},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "kubelet", ReportingInstance: r.pod.Spec.NodeName,
	}
	if _, err := r.a.cs.CoreV1().Events(r.pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		log.Printf("node-agent: event FailedMount for pod %s/%s: %v", r.pod.Namespace, r.pod.Name, err)
	}
}
