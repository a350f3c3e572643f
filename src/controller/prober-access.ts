// Who may talk to an experiment's prober pods: only the controller. Per run it creates
//  - a Secret `<experiment>-run-token` with 32 random bytes, owned by the experiment (the
//    garbage collector deletes it with the experiment), read by the prober pods through a
//    secretKeyRef and sent by the controller as a bearer token on every call;
//  - optionally (--prober-network-policy) a NetworkPolicy owned by the experiment that lets
//    only the controller's pods reach the API port and only the metrics scraper the metrics
//    port of its prober pods.
// The token is read back from the Secret after a controller restart (RBAC: secrets get).
import type {
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPeer,
  V1OwnerReference,
  V1Secret,
} from '@kubernetes/client-node';
import { newToken } from '../server/bearer-token.ts';
import { isAlreadyExists, type Kube, LABEL_COMPONENT, LABEL_EXPERIMENT } from './kube.ts';
import {
  type ExperimentIdentity,
  PROBER_METRICS_PORT,
  PROBER_PORT,
  proberPodName,
  type TokenSecretRef,
} from './prober-pods.ts';

export const RUN_TOKEN_KEY = 'token';
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

/** The run tokens (cached by experiment uid) and the per-run NetworkPolicies. */
export class ProberAccess {
  readonly #kube: Kube;
  readonly #networkPolicy: ProberNetworkPolicyOptions | undefined;
  readonly #tokens = new Map<string, string>();
  /** Experiments whose NetworkPolicy exists (no create per reconcile pass). */
  readonly #fenced = new Set<string>();

  constructor(kube: Kube, networkPolicy?: ProberNetworkPolicyOptions) {
    this.#kube = kube;
    this.#networkPolicy = networkPolicy;
  }

  /** Creates the token Secret (and the NetworkPolicy) before the pods; where the pods read the token. */
  async prepare(exp: ExperimentIdentity): Promise<TokenSecretRef> {
    await this.token(exp);
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

  /** The run's token: from memory, else from its Secret, else a new Secret. */
  async token(exp: ExperimentIdentity): Promise<string> {
    const known = this.#tokens.get(exp.uid);
    if (known) return known;
    const name = runTokenSecretName(exp.name);
    let token = newToken();
    try {
      await this.#kube.core.createNamespacedSecret({
        namespace: exp.namespace,
        body: runTokenSecret(exp, token),
      });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const secret = await this.#kube.core.readNamespacedSecret({ name, namespace: exp.namespace });
      const owned = secret.metadata?.ownerReferences?.some((o) => o.uid === exp.uid && o.controller);
      const data = secret.data?.[RUN_TOKEN_KEY];
      if (!owned || !data)
        throw new ProberAccessError(
          `Secret ${name} exists but was not created by failwatch for this experiment: delete it (failwatch creates the run token there)`,
        );
      token = Buffer.from(data, 'base64').toString('utf8');
    }
    this.#tokens.set(exp.uid, token);
    return token;
  }

  forget(uid: string): void {
    this.#tokens.delete(uid);
    this.#fenced.delete(uid);
  }
}
