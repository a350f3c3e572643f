# Conveniences; the scripts do the work (see README.md and test/k8s/README.md).
.PHONY: dev-cluster dev-cluster-down dev-cluster-status k8s-binaries

# A real control plane (etcd, kube-apiserver, kube-controller-manager, node agent) on loopback.
dev-cluster:
	@bash scripts/dev-cluster up

dev-cluster-down:
	@bash scripts/dev-cluster down

dev-cluster-status:
	@bash scripts/dev-cluster status

# Build test/k8s/bin/ (only what changed; FORCE=1 rebuilds everything).
k8s-binaries:
	@bash test/k8s/build.sh
