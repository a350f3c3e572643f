// Who may talk to an experiment's prober pods: only the controller. Per run it creates
//  - a Secret `<experiment>-run-token` holding HMAC-SHA256(controller key, experiment uid),
//    owned by the experiment (the garbage collector deletes it with the experiment), read by
//    the prober pods through a secretKeyRef and sent by the controller as a bearer token;
//  - optionally (--prober-network-policy) a NetworkPolicy owned by the experiment that lets
//    only the controller's pods reach the API port and only the metrics scraper the metrics
//    port of its prober pods.
// The controller key is 32 random bytes in the Secret `failwatch-run-token-key` of the
// controller's own namespace (created on first use). The token is derived again after a
// restart, so the controller never reads a Secret of a tenant's namespace (RBAC there:
// secrets create only; create cannot read anything back).

import { createHmac, randomBytes } from 'node:crypto';
import type {
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
  V1OwnerReference,
  V1Secret,
} from '@kubernetes/client-node';
import { isAlreadyExists, isNotFound, type Kube, LABEL_COMPONENT, LABEL_EXPERIMENT } from './kube.ts';
import {
  type ExperimentIdentity,
  PROBER_METRICS_PORT,
  PROBER_PORT,
  proberPodName,
  type TokenSecretRef,
} from './prober-pods.ts';

export const RUN_TOKEN_KEY = 'token';
/** The Secret of the controller's namespace that holds the key the run tokens derive from. */
export const CONTROLLER_KEY_SECRET = 'failwatch-run-token-key';
const CONTROLLER_KEY = 'key';

/** A run's token: HMAC-SHA256(controller key, experiment uid), base64url (32 bytes). */
export function runToken(controllerKey: Buffer, experimentUid: string): string {
  return createHmac('sha256', controllerKey).update(experimentUid).digest('base64url');
}
export const ANNOTATION_RUN_ID = 'failwatch.io/run-id';

/** Label selectors of the peers a prober NetworkPolicy admits (Kubernetes LabelSelector shape). */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

export interface ProberNetworkPolicyOptions {
  /** The controller's namespace (its pods are the only API clients). */
  controllerNamespace: string;
  /** Labels of the controller's pods (the chart's selector labels). */
  controllerPodSelector: LabelSelector;
  /** Who may scrape /metrics: namespaces and pods (both absent: nobody). */
  scraperNamespaceSelector?: LabelSelector;
  scraperPodSelector?: LabelSelector;
}

/** The run token Secret or its NetworkPolicy cannot be used: the run fails with this reason. */
export class ProberAccessError extends Error {
  readonly reason = 'RunTokenConflict';
}

/** `<experiment>-run-token`, shortened with a hash like the pod names when too long. */
export function runTokenSecretName(experiment: string): string {
  return proberPodName(experiment, 'run-token').replace('-probe-run-token', '-run-token');
}

export function proberNetworkPolicyName(experiment: string): string {
  return proberPodName(experiment, 'probers').replace('-probe-probers', '-probers');
}

function ownerReference(exp: ExperimentIdentity): V1OwnerReference {
  return {
    apiVersion: 'failwatch.io/v1alpha1',
    kind: 'FailoverExperiment',
    name: exp.name,
    uid: exp.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function labels(exp: ExperimentIdentity, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'failwatch',
    [LABEL_COMPONENT]: component,
    [LABEL_EXPERIMENT]: exp.name,
  };
}

export function runTokenSecret(exp: ExperimentIdentity, token: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: runTokenSecretName(exp.name),
      namespace: exp.namespace,
      labels: labels(exp, 'run-token'),
      annotations: { [ANNOTATION_RUN_ID]: exp.runId },
      ownerReferences: [ownerReference(exp)],
    },
    immutable: true,
    data: { [RUN_TOKEN_KEY]: Buffer.from(token).toString('base64') },
  };
}

/** Ingress to an experiment's prober pods: the controller on the API port, the scraper on metrics. */
export function proberNetworkPolicy(
  exp: ExperimentIdentity,
  opts: ProberNetworkPolicyOptions,
): V1NetworkPolicy {
  const controller: V1NetworkPolicyPeer = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': opts.controllerNamespace } },
    podSelector: opts.controllerPodSelector,
  };
  const scraper: V1NetworkPolicyPeer = {};
  if (opts.scraperNamespaceSelector) scraper.namespaceSelector = opts.scraperNamespaceSelector;
  if (opts.scraperPodSelector) scraper.podSelector = opts.scraperPodSelector;
  const ingress: V1NetworkPolicyIngressRule[] = [
    { _from: [controller], ports: [{ protocol: 'TCP', port: PROBER_PORT }] },
  ];
  if (Object.keys(scraper).length > 0)
    ingress.push({ _from: [scraper], ports: [{ protocol: 'TCP', port: PROBER_METRICS_PORT }] });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: proberNetworkPolicyName(exp.name),
      namespace: exp.namespace,
      labels: labels(exp, 'prober-network-policy'),
      ownerReferences: [ownerReference(exp)],
    },
    spec: {
      podSelector: {
        matchLabels: {
          'app.kubernetes.io/name': 'failwatch',
          [LABEL_COMPONENT]: 'prober',
          [LABEL_EXPERIMENT]: exp.name,
        },
      },
      policyTypes: ['Ingress'],
      ingress,
    },
  };
}

/** The run tokens (derived per experiment uid) and the per-run NetworkPolicies. */
export class ProberAccess {
  readonly #kube: Kube;
  readonly #controllerNamespace: string;
  readonly #networkPolicy: ProberNetworkPolicyOptions | undefined;
  #key: Promise<Buffer> | undefined;
  /** Experiments whose token Secret exists (no create per reconcile pass). */
  readonly #issued = new Set<string>();
  /** Experiments whose NetworkPolicy exists (no create per reconcile pass). */
  readonly #fenced = new Set<string>();

  constructor(kube: Kube, controllerNamespace: string, networkPolicy?: ProberNetworkPolicyOptions) {
    this.#kube = kube;
    this.#controllerNamespace = controllerNamespace;
    this.#networkPolicy = networkPolicy;
  }

  /** Creates the token Secret (and the NetworkPolicy) before the pods; where the pods read the token. */
  async prepare(exp: ExperimentIdentity): Promise<TokenSecretRef> {
    if (!this.#issued.has(exp.uid)) {
      const token = await this.token(exp);
      // Already there: ours from before a restart (the same token, derived again). Another's
      // would hold another token: the prober then refuses ours and the run fails.
      await this.#kube.core
        .createNamespacedSecret({ namespace: exp.namespace, body: runTokenSecret(exp, token) })
        .catch((err) => {
          if (!isAlreadyExists(err)) throw err;
        });
      this.#issued.add(exp.uid);
    }
    if (this.#networkPolicy && this.#kube.networking && !this.#fenced.has(exp.uid)) {
      await this.#kube.networking
        .createNamespacedNetworkPolicy({
          namespace: exp.namespace,
          body: proberNetworkPolicy(exp, this.#networkPolicy),
        })
        .catch((err) => {
          if (!isAlreadyExists(err)) throw err;
        });
      this.#fenced.add(exp.uid);
    }
    return { name: runTokenSecretName(exp.name), key: RUN_TOKEN_KEY };
  }

  /** The run's token, derived from the controller key and the experiment's uid. */
  async token(exp: Pick<ExperimentIdentity, 'uid'>): Promise<string> {
    return runToken(await this.controllerKey(), exp.uid);
  }

  /** The controller key: read from its Secret, created there on first use. */
  controllerKey(): Promise<Buffer> {
    this.#key ??= this.#loadKey().catch((err) => {
      this.#key = undefined; // look again on the next call
      throw err;
    });
    return this.#key;
  }

  async #loadKey(): Promise<Buffer> {
    const ref = { namespace: this.#controllerNamespace, name: CONTROLLER_KEY_SECRET };
    const read = async (): Promise<Buffer | undefined> => {
      try {
        const data = (await this.#kube.core.readNamespacedSecret(ref)).data?.[CONTROLLER_KEY];
        if (!data)
          throw new ProberAccessError(
            `Secret ${ref.namespace}/${ref.name} has no key ${CONTROLLER_KEY}: delete it (failwatch creates it)`,
          );
        return Buffer.from(data, 'base64');
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    };
    const existing = await read();
    if (existing) return existing;
    const key = randomBytes(32);
    try {
      await this.#kube.core.createNamespacedSecret({
        namespace: ref.namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: {
            name: ref.name,
            labels: { 'app.kubernetes.io/name': 'failwatch', [LABEL_COMPONENT]: 'run-token-key' },
          },
          immutable: true,
          data: { [CONTROLLER_KEY]: key.toString('base64') },
        },
      });
      return key;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const other = await read(); // another replica created it first
      if (!other) throw err;
      return other;
    }
  }

  forget(uid: string): void {
    this.#issued.delete(uid);
    this.#fenced.delete(uid);
  }
}
