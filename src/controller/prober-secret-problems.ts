// A missing Secret or key, read from the prober pod's own status instead of the Secret (the
// controller may not read Secrets). The kubelet says it in two places, with these messages
// (pkg/kubelet/kubelet_pods.go, pkg/volume/secret/secret.go, operation_generator.go):
//  - env from secretKeyRef: the container waits with reason CreateContainerConfigError and the
//    message `secret "NAME" not found` or `couldn't find key KEY in Secret NS/NAME`;
//  - a Secret volume (tls.caSecretRef): the pod stays in ContainerCreating and the kubelet emits
//    a Warning Event `FailedMount` on the pod: `MountVolume.SetUp failed for volume "VOL" :
//    secret "NAME" not found` or `... : references non-existent secret key: KEY`.
// Only names are parsed and repeated, never values (the kubelet's messages carry none).
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import type { EndpointSpec } from '../api/experiment-spec.ts';
import type { Kube } from './kube.ts';
import { CA_VOLUME } from './prober-pods.ts';

export interface SecretProblem {
  reason: 'SecretNotFound' | 'SecretKeyNotFound';
  /** For the condition: names the Secret and the key, and what to do. */
  message: string;
}

const NOT_FOUND = /secrets? "([^"]+)" not found/;
const ENV_KEY_MISSING = /couldn't find key (\S+) in Secret ([^/\s]+)\/(\S+)/;
const VOLUME_KEY_MISSING =
  /MountVolume\.SetUp failed for volume "([^"]+)" : references non-existent secret key: (\S+)/;
const VOLUME_NOT_FOUND = /MountVolume\.SetUp failed for volume "([^"]+)" : secrets? "([^"]+)" not found/;

/** The container's CreateContainerConfigError, if it is about a credentials Secret. */
export function secretProblemOfPod(pod: V1Pod, endpoint: EndpointSpec): SecretProblem | undefined {
  const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
  if (waiting?.reason !== 'CreateContainerConfigError') return undefined;
  return secretProblemOfConfigError(waiting.message ?? '', pod.metadata?.namespace ?? '', endpoint);
}

export function secretProblemOfConfigError(
  message: string,
  namespace: string,
  endpoint: EndpointSpec,
): SecretProblem | undefined {
  const keyless = ENV_KEY_MISSING.exec(message);
  if (keyless) {
    const [, key, , name] = keyless as unknown as [string, string, string, string];
    return { reason: 'SecretKeyNotFound', message: keyMessage(name, key, endpoint) };
  }
  const missing = NOT_FOUND.exec(message);
  if (missing)
    return {
      reason: 'SecretNotFound',
      message: `Secret ${missing[1]} not found in namespace ${namespace}: create it`,
    };
  return undefined;
}

/** A FailedMount Event's message, if it is about tls.caSecretRef's volume. */
export function secretProblemOfMountEvent(
  message: string,
  namespace: string,
  endpoint: EndpointSpec,
  volume: string,
): SecretProblem | undefined {
  const ca = endpoint.tls.caSecretRef;
  if (!ca) return undefined;
  const keyless = VOLUME_KEY_MISSING.exec(message);
  if (keyless?.[1] === volume)
    return {
      reason: 'SecretKeyNotFound',
      message: `Secret ${ca.name} has no key ${keyless[2]}: add the key or set tls.caSecretRef.key (tls.caSecretRef, the CA bundle)`,
    };
  const missing = VOLUME_NOT_FOUND.exec(message);
  if (missing?.[1] === volume)
    return {
      reason: 'SecretNotFound',
      message: `Secret ${missing[2]} not found in namespace ${namespace}: create it (tls.caSecretRef, the CA bundle)`,
    };
  return undefined;
}

function keyMessage(secret: string, key: string, endpoint: EndpointSpec): string {
  const ref = endpoint.credentials.secretRef;
  if (ref?.name === secret)
    return `Secret ${secret} has no key ${key}: add the key or set usernameKey/passwordKey`;
  return `Secret ${secret} has no key ${key}: add the key`;
}

/** How long a pod may be ContainerCreating before its FailedMount Events are looked up. */
const MOUNT_GRACE_MS = 2000;
/** At most one Event list per pod this often. */
const EVENT_LIST_EVERY_MS = 3000;

/**
 * The Secret problems of prober pods: from the container status (no API call), and for the CA
 * bundle's volume from the pod's FailedMount Events (one list per pod every 3 s at most, only
 * while it waits in ContainerCreating; RBAC: events list).
 */
export class ProberSecretProblems {
  readonly #kube: Pick<Kube, 'core'>;
  readonly #now: () => number;
  /** Per pod uid: when its Events were listed, and the newest FailedMount message. */
  readonly #mounts = new Map<string, { atMs: number; message: string | undefined }>();

  constructor(kube: Pick<Kube, 'core'>, now: () => number = Date.now) {
    this.#kube = kube;
    this.#now = now;
  }

  /** `caVolume`: the endpoint's CA bundle volume in the pod (caVolumeName of its lane index). */
  async problem(
    pod: V1Pod,
    endpoint: EndpointSpec,
    caVolume = CA_VOLUME,
  ): Promise<SecretProblem | undefined> {
    if (pod.metadata?.deletionTimestamp) return undefined;
    const fromStatus = secretProblemOfPod(pod, endpoint);
    if (fromStatus || !endpoint.tls.caSecretRef) return fromStatus;
    const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
    const creating = pod.status?.phase === 'Pending' && (!waiting || waiting.reason === 'ContainerCreating');
    const uid = pod.metadata?.uid;
    const created = Date.parse(`${pod.metadata?.creationTimestamp ?? ''}`);
    if (!creating || !uid || !(this.#now() - created >= MOUNT_GRACE_MS)) return undefined;
    for (const [k, v] of this.#mounts) if (this.#now() - v.atMs > 60_000) this.#mounts.delete(k);
    let seen = this.#mounts.get(uid);
    if (!seen || this.#now() - seen.atMs >= EVENT_LIST_EVERY_MS) {
      const events = await this.#kube.core.listNamespacedEvent({
        namespace: pod.metadata!.namespace!,
        fieldSelector: `involvedObject.uid=${uid},reason=FailedMount`,
      });
      seen = { atMs: this.#now(), message: newestEvent(events.items)?.message };
      this.#mounts.set(uid, seen);
    }
    return seen.message === undefined
      ? undefined
      : secretProblemOfMountEvent(seen.message, pod.metadata!.namespace!, endpoint, caVolume);
  }
}

function eventTimeMs(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}

function newestEvent(events: CoreV1Event[]): CoreV1Event | undefined {
  return events.reduce<CoreV1Event | undefined>(
    (a, b) => (a === undefined || eventTimeMs(b) >= eventTimeMs(a) ? b : a),
    undefined,
  );
}
