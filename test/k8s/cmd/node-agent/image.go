package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pathMapping maps a path of the image (e.g. /app, its WORKDIR with the sources) onto this
// machine (the checkout), so a pod whose command names the image's files runs as it would
// in the image: `node /app/src/cli/main.ts` becomes `node <checkout>/src/cli/main.ts`.
type pathMapping struct{ image, local string }

// parsePathMap reads `IMAGEPATH=LOCALPATH[,...]`.
func parsePathMap(text string) ([]pathMapping, error) {
	var out []pathMapping
	for _, pair := range strings.Split(text, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		image, local, ok := strings.Cut(pair, "=")
		if !ok || !strings.HasPrefix(image, "/") || local == "" {
			return nil, fmt.Errorf("want IMAGEPATH=LOCALPATH, got %q", pair)
		}
		out = append(out, pathMapping{strings.TrimSuffix(image, "/"), strings.TrimSuffix(local, "/")})
	}
	return out, nil
}

// mapPath rewrites an argument or directory that is an image path (or lies below one).
func (a *agent) mapPath(arg string) string {
	for _, m := range a.imagePaths {
		if arg == m.image {
			return m.local
		}
		if strings.HasPrefix(arg, m.image+"/") {
			return m.local + arg[len(m.image):]
		}
	}
	return arg
}

// serviceAccountEnv gives a pod's processes its ServiceAccount's credentials the way they can
// use them on this machine: a kubeconfig with a token bound to the pod (TokenRequest, like the
// kubelet's projected token) in KUBECONFIG, plus KUBERNETES_SERVICE_HOST/PORT as in a pod.
// Nothing when the pod opts out of automounting.
func (a *agent) serviceAccountEnv(ctx context.Context, pod *corev1.Pod) (map[string]string, error) {
	if a.apiServer == "" || pod.Spec.ServiceAccountName == "" ||
		(pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken) {
		return nil, nil
	}
	expiration := int64(3600 * 6)
	tr, err := a.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, pod.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &expiration,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token of ServiceAccount %s: %w", pod.Spec.ServiceAccountName, err)
	}
	dir := filepath.Join(a.logDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "serviceaccount.kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: pod
  context: {cluster: cluster, user: %s, namespace: %s}
current-context: pod
`, a.apiServer, base64.StdEncoding.EncodeToString(a.apiServerCA), pod.Spec.ServiceAccountName,
		tr.Status.Token, pod.Spec.ServiceAccountName, pod.Namespace)
	if err := os.WriteFile(file, []byte(kubeconfig), 0o600); err != nil {
		return nil, err
	}
	host, port := "127.0.0.1", "443"
	if rest, ok := strings.CutPrefix(a.apiServer, "https://"); ok {
		if h, p, ok := strings.Cut(rest, ":"); ok {
			host, port = h, strings.TrimSuffix(p, "/")
		} else {
			host = rest
		}
	}
	return map[string]string{
		"KUBECONFIG":              file,
		"KUBERNETES_SERVICE_HOST": host,
		"KUBERNETES_SERVICE_PORT": port,
	}, nil
}
