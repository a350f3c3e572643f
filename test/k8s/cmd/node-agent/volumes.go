package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Secret volumes. A container's processes run on this machine, so a mount cannot put files at
// its mountPath; instead the agent writes the Secret's items into a per-pod directory
// (--volume-dir/<namespace>_<pod>_<uid>/<volume>) and maps the mountPath onto it: every env
// value, command/args word and workingDir that is the mountPath or lies under it is rewritten
// to the directory. As with a kubelet, the volumes are set up before the container is created:
// a missing Secret or key keeps the pod in ContainerCreating and is told by a Warning Event
// FailedMount with the kubelet's message (`MountVolume.SetUp failed for volume "ca" : secret
// "x" not found`, `... : references non-existent secret key: ca.crt`; pkg/volume/secret and
// operationexecutor in kubernetes). Other volume types are still ignored.

// mountError is a volume that cannot be set up; Error() is the kubelet's FailedMount message.
type mountError struct {
	volume string
	err    error
}

func (e *mountError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", e.volume, e.err)
}

// podVolumeDir is where a pod's volumes are written.
func (a *agent) podVolumeDir(pod *corev1.Pod) string {
	return filepath.Join(a.volumeDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
}

// mountSecretVolumes writes the Secret volumes container c mounts and returns mountPath ->
// directory, longest mountPath first.
func (a *agent) mountSecretVolumes(ctx context.Context, pod *corev1.Pod, c corev1.Container) ([]mapping, error) {
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	var out []mapping
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok || v.Secret == nil {
			continue
		}
		dir := filepath.Join(a.podVolumeDir(pod), v.Name)
		if err := a.writeSecretVolume(ctx, pod.Namespace, v.Secret, dir); err != nil {
			if errors.Is(err, errSkip) {
				continue
			}
			return nil, &mountError{volume: v.Name, err: err}
		}
		if m.SubPath != "" {
			dir = filepath.Join(dir, m.SubPath)
		}
		out = append(out, mapping{from: filepath.Clean(m.MountPath), to: dir})
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].from) > len(out[j].from) })
	return out, nil
}

func (a *agent) writeSecretVolume(ctx context.Context, ns string, src *corev1.SecretVolumeSource, dir string) error {
	data, err := a.secretData(ctx, ns, src.SecretName, src.Optional)
	if err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if src.DefaultMode != nil {
		mode = os.FileMode(*src.DefaultMode)
	}
	type file struct {
		path string
		mode os.FileMode
		data string
	}
	var files []file
	if len(src.Items) == 0 {
		for k, v := range data {
			files = append(files, file{k, mode, v})
		}
	}
	for _, item := range src.Items {
		v, ok := data[item.Key]
		if !ok {
			if src.Optional != nil && *src.Optional {
				continue
			}
			return fmt.Errorf("references non-existent secret key: %s", item.Key)
		}
		m := mode
		if item.Mode != nil {
			m = os.FileMode(*item.Mode)
		}
		files = append(files, file{item.Path, m, v})
	}
	// Fresh contents at every container start, as the kubelet keeps a Secret volume current.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.Clean("/"+f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil { // WriteFile's mode is subject to the umask
			return err
		}
	}
	return os.MkdirAll(dir, 0o755)
}

// mapping maps a container path (a volume's mountPath) onto a directory of this machine.
type mapping struct{ from, to string }

// rewritePath applies the first mapping whose mountPath is s or a parent of s.
func rewritePath(s string, mappings []mapping) string {
	for _, m := range mappings {
		if s == m.from {
			return m.to
		}
		if rest, ok := strings.CutPrefix(s, m.from+"/"); ok {
			return filepath.Join(m.to, rest)
		}
	}
	return s
}
