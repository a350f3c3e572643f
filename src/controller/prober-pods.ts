// Prober pods: one per endpoint, owned by the experiment, restricted security context,
// credentials from a Secret of the experiment's namespace via secretKeyRef (never copied
// anywhere else). The controller pulls samples from them over HTTP; the pods keep every
// sample until the run ends, so a controller restart loses nothing. The API needs the run's
// token (src/controller/run-token.ts) as a bearer token; /metrics is open on its own port.
import type { V1Affinity, V1Pod, V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import { laneName, type ProbeLane, type ProberGroup, splitLane } from '../api/probe-lanes.ts';
import { ZONE_LABEL } from '../api/prober-placement.ts';
import type { ProbeSample } from '../probe/types.ts';
import { laneEnvName, PROBE_POD_ENV, proberLanePrefix } from '../server/probe-pod-env.ts';
import { LABEL_COMPONENT, LABEL_ENDPOINT, LABEL_EXPERIMENT, LABEL_ZONE } from './kube.ts';
import { proberNodeOptions, proberResources } from './prober-resources.ts';

export const PROBER_PORT = 9090;
/** The prober's open /metrics port (Prometheus); the API on PROBER_PORT needs the run token. */
export const PROBER_METRICS_PORT = 9091;
/** Where tls.caSecretRef's key is mounted in a prober pod (read-only). */
export const CA_MOUNT_PATH = '/etc/failwatch/ca';
export const CA_VOLUME = 'ca-bundle';
const CA_FILE_NAME = 'ca.crt';

export interface ExperimentIdentity {
  namespace: string;
  name: string;
  uid: string;
  runId: string;
  /** spec.target.region: the region of IAM auth tokens without credentials.iam.region. */
  targetRegion?: string;
}

/** Where the pod reads the run's API token: a key of a Secret in its namespace. */
export interface TokenSecretRef {
  name: string;
  key: string;
}

export function proberPodName(experiment: string, endpoint: string): string {
  const base = `${experiment}-probe-${endpoint}`;
  return base.length <= 63 ? base : `${base.slice(0, 54)}-${hash(base)}`;
}

/**
 * The prober pod of a lane: `<experiment>-probe-<endpoint>` or `<experiment>-probe-<endpoint>-<zone>`
 * (the zone lowercased, `_` and `.` made `-`, with a hash of the zone when that changed it).
 */
export function lanePodName(
  experiment: string,
  lane: { endpoint: { name: string }; zone?: string | undefined },
  suffix = '',
): string {
  const zone = lane.zone;
  if (!zone) return proberPodName(experiment, `${lane.endpoint.name}${suffix}`);
  const plain = zone.toLowerCase().replace(/[_.]/g, '-');
  const zonePart = plain === zone ? zone : `${plain}-${hash(zone).slice(0, 4)}`;
  return proberPodName(experiment, `${lane.endpoint.name}-${zonePart}${suffix}`);
}

/** The lanes a prober pod measures: its endpoints annotation (or endpoint label) and zone label. */
export function lanesOfPod(pod: V1Pod): string[] {
  const labels = pod.metadata?.labels ?? {};
  const endpoints = pod.metadata?.annotations?.[ANNOTATION_ENDPOINTS]?.split(',') ?? [
    labels[LABEL_ENDPOINT] ?? '',
  ];
  return endpoints.map((endpoint) => laneName(endpoint, labels[LABEL_ZONE]));
}

/** The pod name of a prober group (see ProberGroup.podKey), `suffix` for a replacement. */
export function groupPodName(experiment: string, group: ProberGroup, suffix = ''): string {
  return lanePodName(experiment, { endpoint: { name: group.podKey }, zone: group.zone }, suffix);
}

/**
 * Annotation of every prober pod: the endpoints it probes, comma-separated in its lanes' order
 * (more than one: it serves each one's API under /endpoints/<name>).
 */
export const ANNOTATION_ENDPOINTS = 'failwatch.io/endpoints';

function hash(text: string): string {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Annotation of a prober pod: 0 for the first pod of an endpoint, n for its n-th replacement. */
export const ANNOTATION_PROBER_GENERATION = 'failwatch.io/prober-generation';

/** A replacement prober pod: its generation (1, 2, ...) and first seq. */
export interface Replacement {
  generation: number;
  seqBase: number;
}

/**
 * The prober pod of one lane (an endpoint, or an endpoint in one zone) or of a group of lanes
 * (spec.probers.sharing Zone), placed as the spec's probers and the endpoints' overrides say.
 * With credentials.iam a lane gets no database Secret: the pod signs IAM tokens with the AWS
 * credentials of its ServiceAccount (IRSA / EKS Pod Identity), for the region resolved here
 * (credentials.iam.region, else the target's, `exp.targetRegion`). Lane i >= 1 of a shared pod
 * reads variables ending in `_<i>` and its CA bundle from a volume of its own.
 */
export function proberPod(
  exp: ExperimentIdentity,
  what: ProberGroup | ProbeLane | EndpointSpec,
  image: string,
  token: TokenSecretRef,
  replacement?: Replacement,
): V1Pod {
  const group = asGroup(what);
  const { zone, placement } = group;
  // The spec's validation lets a shared pod's IAM endpoints sign with one ServiceAccount only.
  const serviceAccountName = group.lanes.find((l) => l.endpoint.credentials.iam?.serviceAccountName)?.endpoint
    .credentials.iam?.serviceAccountName;
  const resources = proberResources(placement.resources, group.lanes.length);
  const env: { name: string; value?: string; valueFrom?: object }[] = [
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'FAILWATCH_RUN_ID', value: exp.runId },
    { name: 'FAILWATCH_EXPERIMENT', value: `${exp.namespace}/${exp.name}` },
    ...(zone ? [{ name: PROBE_POD_ENV.zone, value: zone }] : []),
    ...(group.lanes.length > 1 ? [{ name: PROBE_POD_ENV.lanes, value: String(group.lanes.length) }] : []),
  ];
  const volumes: V1Volume[] = [];
  const mounts: V1VolumeMount[] = [];
  for (const [index, { endpoint }] of group.lanes.entries()) {
    const secret = endpoint.credentials.secretRef;
    const iam = endpoint.credentials.iam;
    if (!secret && !iam)
      throw new Error(
        `endpoint ${endpoint.name}: credentials.secretRef or credentials.iam is required in Kubernetes`,
      );
    const region = iam?.region ?? exp.targetRegion;
    const credentials = iam ? { iam: { ...iam, ...(region ? { region } : {}) } } : { secretRef: secret };
    const name = (base: string) => laneEnvName(base, index);
    env.push({
      name: name(PROBE_POD_ENV.endpoint),
      value: JSON.stringify({ ...withoutPlacement(endpoint), credentials }),
    });
    if (secret && !iam)
      env.push(
        {
          name: name(PROBE_POD_ENV.username),
          valueFrom: { secretKeyRef: { name: secret.name, key: secret.usernameKey } },
        },
        {
          name: name(PROBE_POD_ENV.password),
          valueFrom: { secretKeyRef: { name: secret.name, key: secret.passwordKey } },
        },
      );
    const ca = caBundleMount(endpoint, index);
    if (ca) {
      env.push(ca.env);
      volumes.push(ca.volume);
      mounts.push(ca.mount);
    }
  }
  env.push(
    {
      name: 'FAILWATCH_API_TOKEN',
      valueFrom: { secretKeyRef: { name: token.name, key: token.key } },
    },
    { name: 'FAILWATCH_LISTEN_PORT', value: String(PROBER_PORT) },
    { name: 'FAILWATCH_METRICS_PORT', value: String(PROBER_METRICS_PORT) },
    // V8 sized for the container's memory limit (see prober-resources.ts).
    { name: 'NODE_OPTIONS', value: proberNodeOptions(group.lanes.length, resources.limits?.memory) },
  );
  // Each endpoint's host lookups (no dns.server: getaddrinfo) take libuv pool threads: one
  // endpoint's stuck lookups during a failover must not hold up the others' (default pool: 4).
  if (group.lanes.length > 1)
    env.push({ name: 'UV_THREADPOOL_SIZE', value: String(Math.min(128, 4 * group.lanes.length)) });
  if (replacement) env.push({ name: 'FAILWATCH_SEQ_BASE', value: String(replacement.seqBase) });
  const single = group.lanes.length === 1 ? group.lanes[0]!.endpoint.name : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: groupPodName(exp.name, group, replacement ? `-r${replacement.generation}` : ''),
      namespace: exp.namespace,
      labels: {
        'app.kubernetes.io/name': 'failwatch',
        [LABEL_COMPONENT]: 'prober',
        [LABEL_EXPERIMENT]: exp.name,
        ...(single ? { [LABEL_ENDPOINT]: single } : {}),
        ...(zone ? { [LABEL_ZONE]: zone } : {}),
      },
      annotations: {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(PROBER_METRICS_PORT),
        'prometheus.io/path': '/metrics',
        [ANNOTATION_PROBER_GENERATION]: String(replacement?.generation ?? 0),
        [ANNOTATION_ENDPOINTS]: group.lanes.map((l) => l.endpoint.name).join(','),
      },
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
      ...(serviceAccountName ? { serviceAccountName } : {}),
      // IRSA and EKS Pod Identity project their own token volume; the API token is not needed.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      ...placementFields(placement, zone),
      ...(volumes.length > 0 ? { volumes } : {}),
      containers: [
        {
          name: 'prober',
          image,
          args: ['probe'],
          env,
          ports: [
            { name: 'http', containerPort: PROBER_PORT },
            { name: 'metrics', containerPort: PROBER_METRICS_PORT },
          ],
          ...(mounts.length > 0 ? { volumeMounts: mounts } : {}),
          readinessProbe: { httpGet: { path: '/readyz', port: PROBER_PORT }, periodSeconds: 2 },
          resources,
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

/** A lane alone, or an endpoint alone (the lane without zones), is a group of one. */
function asGroup(value: ProberGroup | ProbeLane | EndpointSpec): ProberGroup {
  if ('lanes' in value) return value;
  const lane = asLane(value);
  return {
    lanes: [lane],
    ...(lane.zone ? { zone: lane.zone } : {}),
    placement: lane.placement,
    podKey: lane.endpoint.name,
  };
}

/** An endpoint alone is the lane without zones, placed by its own probers override only. */
function asLane(value: ProbeLane | EndpointSpec): ProbeLane {
  if ('endpoint' in value) return value;
  const { zones: _zones, sharing: _sharing, maxEndpointsPerPod: _max, ...placement } = value.probers ?? {};
  return { name: value.name, endpoint: value, placement };
}

/** The endpoint without its probers override: where the pod runs is no business of the prober. */
function withoutPlacement(endpoint: EndpointSpec): Omit<EndpointSpec, 'probers'> {
  const { probers: _placement, ...rest } = endpoint;
  return rest;
}

/** nodeSelector (with the zone), affinity, tolerations and priorityClassName of the pod. */
function placementFields(placement: ProbeLane['placement'], zone: string | undefined): Partial<V1PodSpec> {
  const nodeSelector = { ...placement.nodeSelector, ...(zone ? { [ZONE_LABEL]: zone } : {}) };
  return {
    ...(Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    // The API server checks the affinity against the Pod schema when the pod is created.
    ...(placement.affinity ? { affinity: placement.affinity as V1Affinity } : {}),
    ...(placement.tolerations ? { tolerations: placement.tolerations.map((t) => ({ ...t })) } : {}),
    ...(placement.priorityClassName ? { priorityClassName: placement.priorityClassName } : {}),
  };
}

/** The CA bundle volume of a pod's lane `index` (lane 0: ca-bundle; lane i: ca-bundle-i). */
export function caVolumeName(index: number): string {
  return index === 0 ? CA_VOLUME : `${CA_VOLUME}-${index}`;
}

/**
 * tls.caSecretRef: the Secret's one key as a read-only file (a CA bundle is public, so 0444
 * lets the non-root prober read it without an fsGroup), and FAILWATCH_CA_FILE naming it (lane
 * i >= 1 of a shared pod: its own volume, under CA_MOUNT_PATH/<i>, and FAILWATCH_CA_FILE_<i>).
 */
function caBundleMount(endpoint: EndpointSpec, index = 0) {
  const ref = endpoint.tls.caSecretRef;
  if (!ref) return undefined;
  const volume = caVolumeName(index);
  const mountPath = index === 0 ? CA_MOUNT_PATH : `${CA_MOUNT_PATH}/${index}`;
  return {
    volume: {
      name: volume,
      secret: { secretName: ref.name, items: [{ key: ref.key, path: CA_FILE_NAME }], defaultMode: 0o444 },
    },
    mount: { name: volume, mountPath, readOnly: true },
    env: { name: laneEnvName('FAILWATCH_CA_FILE', index), value: `${mountPath}/${CA_FILE_NAME}` },
  };
}

/** What to check after a prober's setup failed: TLS settings for tls_error, else the Secret. */
export function setupHint(endpoint: EndpointSpec, errorClass: string | undefined): string {
  if (errorClass === 'tls_error') {
    const ca = endpoint.tls.caSecretRef;
    return `check tls.mode ${endpoint.tls.mode}${ca ? `, the CA bundle in Secret ${ca.name} key ${ca.key}` : ''} and that the certificate names host ${endpoint.host}`;
  }
  return credentialsHint(endpoint);
}

/** What a user should check when an endpoint's login fails. */
export function credentialsHint(endpoint: EndpointSpec): string {
  const iam = endpoint.credentials.iam;
  if (iam)
    return `check the IAM policy (rds-db:connect for ${iam.username}) and the role of ServiceAccount ${iam.serviceAccountName ?? 'default'}`;
  return `check Secret ${endpoint.credentials.secretRef?.name}`;
}

/**
 * Why prober pods wait for a node, for the ProbersNotReady message: `; not scheduled: <pod>
 * (<the scheduler's message>)`, e.g. no node in a zone of spec.probers.zones. Empty when all
 * are scheduled.
 */
export function unscheduledHint(pods: Iterable<V1Pod>): string {
  const waiting: string[] = [];
  for (const pod of pods) {
    if (pod.spec?.nodeName) continue;
    const condition = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    waiting.push(`${pod.metadata?.name}${condition?.message ? ` (${condition.message})` : ''}`);
  }
  return waiting.length > 0
    ? `; not scheduled: ${waiting.slice(0, 4).join(', ')}${waiting.length > 4 ? ', ...' : ''}`
    : '';
}

export interface ProberStatus {
  state: 'probing' | 'stopped' | 'setup-failed' | 'starting';
  class?: string;
  code?: string;
  message?: string;
  samples?: number;
  /** Samples not stored because the store was full. */
  dropped?: number;
  /** Setup attempts made so far (failed ones included). */
  setupAttempts?: number;
  /** When probing started (ISO time, the pod's clock). */
  startedAt?: string | null;
  /** The pod's clock when it answered. */
  now?: string;
  /** When stop was asked (ISO time): no attempt starts after it. */
  stopRequestedAt?: string | null;
}

/** HTTP client of one prober pod; every call carries the run's token. */
export class ProberClient {
  readonly base: string;
  readonly #token: string;
  /**
   * `endpoint`: the endpoint to talk to in a pod that probes several (its API is under
   * /endpoints/<name>); leave it out for a pod of one endpoint.
   */
  constructor(podIp: string, token: string, endpoint?: string) {
    this.base = `http://${podIp.includes(':') ? `[${podIp}]` : podIp}:${PROBER_PORT}${endpoint ? proberLanePrefix(endpoint) : ''}`;
    this.#token = token;
  }

  /** The client of each lane of a pod: [lane name, client] (one lane: the pod's own API). */
  static ofPod(pod: V1Pod, token: string): [string, ProberClient][] {
    const lanes = lanesOfPod(pod);
    const ip = pod.status?.podIP ?? '';
    if (lanes.length === 1) return [[lanes[0]!, new ProberClient(ip, token)]];
    return lanes.map((lane) => [lane, new ProberClient(ip, token, splitLane(lane).endpoint)]);
  }

  private async json<T>(path: string, method = 'GET'): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.#token}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }

  status(): Promise<ProberStatus> {
    return this.json('/status');
  }

  /**
   * The samples from `from` on, a page at a time (never more than one page in memory): `onPage`
   * gets each page with the cursor after it and the prober's count of dropped samples.
   */
  async eachPageFrom(
    from: number,
    onPage: (page: { next: number; samples: ProbeSample[]; dropped: number }) => void,
  ): Promise<void> {
    let cursor = from;
    for (;;) {
      const page = await this.json<{ next: number; samples: ProbeSample[]; dropped?: number }>(
        `/samples?from=${cursor}`,
      );
      onPage({ next: page.next, samples: page.samples, dropped: page.dropped ?? 0 });
      if (page.samples.length === 0 || page.next === cursor) return;
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
