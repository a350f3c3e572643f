package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// errSkip marks an optional env source that does not exist.
var errSkip = errors.New("optional source missing")

// resolve returns a container's argv and environment. The environment starts from the
// agent's PATH, HOME, TMPDIR, LANG and TZ (the processes run on this machine, not in an
// image) plus HOSTNAME, then envFrom, then env, with $(VAR) references expanded as in
// Kubernetes. A container without a command runs its args with the agent's default command.
// Paths under a Secret volume's mountPath are mapped onto the pod's volume directory.
func (a *agent) resolve(ctx context.Context, pod *corev1.Pod, ip string, c corev1.Container, mounts []mapping) (argv, env []string, workDir string, err error) {
	vars := map[string]string{}
	var names []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			names = append(names, k)
		}
		vars[k] = v
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			set(k, v)
		}
	}
	set("HOSTNAME", pod.Name)
	sa, err := a.serviceAccountEnv(ctx, pod)
	if err != nil {
		return nil, nil, "", err
	}
	for _, k := range []string{"KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} {
		if v, ok := sa[k]; ok {
			set(k, v)
		}
	}

	for _, from := range c.EnvFrom {
		data, err := a.envFromSource(ctx, pod.Namespace, from)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return nil, nil, "", err
		}
		for k, v := range data {
			set(from.Prefix+k, v)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vars))
			continue
		}
		v, err := a.valueFrom(ctx, pod, ip, e.ValueFrom)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return nil, nil, "", err // the kubelet's message names the Secret and key, not the variable
		}
		set(e.Name, v)
	}
	for _, k := range names {
		env = append(env, k+"="+rewritePath(vars[k], mounts))
	}

	command := c.Command
	if len(command) == 0 {
		command = a.defaultCmd
	}
	for _, arg := range append(append([]string{}, command...), c.Args...) {
		argv = append(argv, podAddress(a.mapPath(rewritePath(expand(arg, vars), mounts)), ip))
	}
	if len(argv) == 0 {
		return nil, nil, "", errors.New("no command: set the container's command, or the node agent's default command (FAILWATCH_NODE_DEFAULT_COMMAND)")
	}
	return argv, env, a.mapPath(rewritePath(c.WorkingDir, mounts)), nil
}

func (a *agent) valueFrom(ctx context.Context, pod *corev1.Pod, ip string, src *corev1.EnvVarSource) (string, error) {
	switch {
	case src.FieldRef != nil:
		return fieldValue(pod, ip, src.FieldRef.FieldPath)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		data, err := a.secretData(ctx, pod.Namespace, ref.Name, ref.Optional)
		if err != nil {
			return "", err
		}
		v, ok := data[ref.Key]
		if !ok {
			return "", missing(ref.Optional, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name))
		}
		return v, nil
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		data, err := a.configMapData(ctx, pod.Namespace, ref.Name, ref.Optional)
		if err != nil {
			return "", err
		}
		v, ok := data[ref.Key]
		if !ok {
			return "", missing(ref.Optional, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name))
		}
		return v, nil
	}
	return "", errors.New("unsupported valueFrom (the node agent knows fieldRef, secretKeyRef and configMapKeyRef)")
}

func (a *agent) envFromSource(ctx context.Context, ns string, from corev1.EnvFromSource) (map[string]string, error) {
	switch {
	case from.SecretRef != nil:
		return a.secretData(ctx, ns, from.SecretRef.Name, from.SecretRef.Optional)
	case from.ConfigMapRef != nil:
		return a.configMapData(ctx, ns, from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
	}
	return nil, errors.New("unsupported envFrom source")
}

func (a *agent) secretData(ctx context.Context, ns, name string, optional *bool) (map[string]string, error) {
	s, err := a.cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, missing(optional, fmt.Errorf("secret %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	data := map[string]string{}
	for k, v := range s.Data {
		data[k] = string(v)
	}
	return data, nil
}

func (a *agent) configMapData(ctx context.Context, ns, name string, optional *bool) (map[string]string, error) {
	cm, err := a.cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, missing(optional, fmt.Errorf("configmap %q not found", name))
	}
	if err != nil {
		return nil, err
	}
	return cm.Data, nil
}

func missing(optional *bool, err error) error {
	if optional != nil && *optional {
		return errSkip
	}
	return err
}

// fieldValue implements the downward API fields a pod's env can name.
func fieldValue(pod *corev1.Pod, ip, path string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return ip, nil
	case "status.hostIP", "status.hostIPs":
		return "127.0.0.1", nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok && strings.HasSuffix(key, "']") {
			return m[strings.TrimSuffix(key, "']")], nil
		}
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// expand replaces $(NAME) with the value of NAME when it is defined and $$ with $, as the
// kubelet does for env values, command and args.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteByte('$')
				continue
			}
			ref := s[i : i+3+end]
			if v, ok := vars[ref[2:len(ref)-1]]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(ref)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// podAddress gives a wildcard listen address in an argument (--listen=0.0.0.0:8080) the pod's
// own address: a pod here is a process in the node's network namespace, so 0.0.0.0 would take the
// port on every address of the machine (127.0.0.1 included, where kubectl port-forward listens),
// not only in the pod as a pod network namespace would.
func podAddress(arg, ip string) string {
	return strings.ReplaceAll(arg, "0.0.0.0:", ip+":")
}
