// Prober pods: one per endpoint, owned by the experiment, restricted security context,
// credentials from a Secret of the experiment's namespace via secretKeyRef (never copied
// anywhere else). The controller pulls samples from them over HTTP; the pods keep every
// sample until the run ends, so a controller restart loses nothing.
import type { V1Pod } from '@kubernetes/client-node';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import type { ProbeSample } from '../probe/types.ts';
import { LABEL_COMPONENT, LABEL_ENDPOINT, LABEL_EXPERIMENT } from './kube.ts';

export const PROBER_PORT = 9090;

export interface ExperimentIdentity {
  namespace: string;
  name: string;
  uid: string;
  runId: string;
}

export function proberPodName(experiment: string, endpoint: string): string {
  const base = `${experiment}-probe-${endpoint}`;
  return base.length <= 63 ? base : `${base.slice(0, 54)}-${hash(base)}`;
}

function hash(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The prober pod of one endpoint. With credentials.iam the pod gets no database Secret: it
 * signs IAM tokens with the AWS credentials of its ServiceAccount (IRSA / EKS Pod Identity),
 * for the region resolved here (credentials.iam.region, else `targetRegion`).
 */
export function proberPod(
  exp: ExperimentIdentity,
  endpoint: EndpointSpec,
  image: string,
  targetRegion?: string,
): V1Pod {
  const secret = endpoint.credentials.secretRef;
  const iam = endpoint.credentials.iam;
  if (!secret && !iam)
    throw new Error(
      `endpoint ${endpoint.name}: credentials.secretRef or credentials.iam is required in Kubernetes`,
    );
  const region = iam?.region ?? targetRegion;
  const credentials = iam ? { iam: { ...iam, ...(region ? { region } : {}) } } : { secretRef: secret };
  const env = [
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'FAILWATCH_RUN_ID', value: exp.runId },
    { name: 'FAILWATCH_EXPERIMENT', value: `${exp.namespace}/${exp.name}` },
    { name: 'FAILWATCH_ENDPOINT', value: JSON.stringify({ ...endpoint, credentials }) },
    ...(secret && !iam
      ? [
          {
            name: 'FAILWATCH_DB_USERNAME',
            valueFrom: { secretKeyRef: { name: secret.name, key: secret.usernameKey } },
          },
          {
            name: 'FAILWATCH_DB_PASSWORD',
            valueFrom: { secretKeyRef: { name: secret.name, key: secret.passwordKey } },
          },
        ]
      : []),
    { name: 'FAILWATCH_LISTEN_PORT', value: String(PROBER_PORT) },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: proberPodName(exp.name, endpoint.name),
      namespace: exp.namespace,
      labels: {
        'app.kubernetes.io/name': 'failwatch',
        [LABEL_COMPONENT]: 'prober',
        [LABEL_EXPERIMENT]: exp.name,
        [LABEL_ENDPOINT]: endpoint.name,
      },
      annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(PROBER_PORT) },
      ownerReferences: [
        {
          apiVersion: 'failwatch.io/v1alpha1',
          kind: 'FailoverExperiment',
          name: exp.name,
          uid: exp.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      restartPolicy: 'Never',
      ...(iam?.serviceAccountName ? { serviceAccountName: iam.serviceAccountName } : {}),
      // IRSA and EKS Pod Identity project their own token volume; the API token is not needed.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'prober',
          image,
          args: ['probe'],
          env,
          ports: [{ name: 'http', containerPort: PROBER_PORT }],
          readinessProbe: { httpGet: { path: '/readyz', port: PROBER_PORT }, periodSeconds: 2 },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
    },
  };
}

/** What a user should check when an endpoint's login fails. */
export function credentialsHint(endpoint: EndpointSpec): string {
  const iam = endpoint.credentials.iam;
  if (iam)
    return `check the IAM policy (rds-db:connect for ${iam.username}) and the role of ServiceAccount ${iam.serviceAccountName ?? 'default'}`;
  return `check Secret ${endpoint.credentials.secretRef?.name}`;
}

export interface ProberStatus {
  state: 'probing' | 'stopped' | 'setup-failed' | 'starting';
  class?: string;
  code?: string;
  message?: string;
  samples?: number;
  /** Setup attempts made so far (failed ones included). */
  setupAttempts?: number;
}

/** HTTP client of one prober pod. */
export class ProberClient {
  readonly base: string;
  constructor(podIp: string) {
    this.base = `http://${podIp}:${PROBER_PORT}`;
  }

  private async json<T>(path: string, method = 'GET'): Promise<T> {
    const res = await fetch(`${this.base}${path}`, { method, signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  status(): Promise<ProberStatus> {
    return this.json('/status');
  }

  /** All samples from `from` on, following pages. */
  async samplesFrom(from: number): Promise<{ next: number; samples: ProbeSample[] }> {
    const out: ProbeSample[] = [];
    let cursor = from;
    for (;;) {
      const page = await this.json<{ next: number; samples: ProbeSample[] }>(`/samples?from=${cursor}`);
      out.push(...page.samples);
      if (page.samples.length === 0 || page.next === cursor) return { next: page.next, samples: out };
      cursor = page.next;
    }
  }

  stop(): Promise<unknown> {
    return this.json('/stop', 'POST');
  }

  async audit(): Promise<{ key: string; serverMs: number }[]> {
    return (await this.json<{ rows: { key: string; serverMs: number }[] }>('/audit', 'POST')).rows;
  }
}
