// The Kubernetes clients the controller uses, and the few helpers every reconciler needs.
import { createHash } from 'node:crypto';
import type { RequestOptions } from 'node:https';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  NetworkingV1Api,
  PatchStrategy,
  type RequestContext,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';

export const EXPERIMENT_PLURAL = 'failoverexperiments';
export const FINALIZER = 'failwatch.io/cleanup';
export const LABEL_EXPERIMENT = 'failwatch.io/experiment';
export const LABEL_ENDPOINT = 'failwatch.io/endpoint';
/** On a prober pod of a zoned lane: the zone it probes from (spec.probers.zones). */
export const LABEL_ZONE = 'failwatch.io/zone';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';

export interface Kube {
  config: KubeConfig & { requests?: number };
  core: CoreV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
  /** Per-run NetworkPolicies of the prober pods (absent in tests that need none). */
  networking?: NetworkingV1Api;
}

type Dispatcher = ReturnType<RequestContext['getDispatcher']>;

/**
 * A KubeConfig whose API requests share one connection pool. client-node 2.x builds a new
 * undici Agent for every request (`KubeConfig.applySecurityAuthentication`), so every call
 * opens a new TLS connection with a new SecureContext (the CA bundle parsed again) that then
 * idles until its keep-alive ends: at 1,000 experiments that was hundreds of MiB outside the
 * V8 heap and a TLS handshake per call. Here the dispatcher is built once per TLS
 * configuration (CA, client certificate, server name) and reused; credentials (a rotating
 * ServiceAccount token, an exec plugin's) are still read per request.
 */
export class SharedConnectionKubeConfig extends KubeConfig {
  /** API requests sent (watches included); the operator's debug hook logs it. */
  requests = 0;
  private dispatcher: { key: string; value: Dispatcher } | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    this.requests++;
    if (this.getCurrentCluster()?.proxyUrl) return super.applySecurityAuthentication(context);
    const opts: RequestOptions = {};
    await this.applyToHTTPSOptions(opts);
    const key = tlsKey(opts);
    if (this.dispatcher?.key !== key) {
      // First request, or new TLS material (a rotated client certificate): the library
      // builds the dispatcher and sets the headers; later requests reuse that dispatcher.
      await super.applySecurityAuthentication(context);
      const previous = this.dispatcher?.value;
      this.dispatcher = { key, value: context.getDispatcher() };
      if (previous) void previous.close().catch(() => {});
      return;
    }
    // The same headers as the library's own applySecurityAuthentication.
    if (opts.auth)
      context.setHeaderParam('Authorization', `Basic ${Buffer.from(opts.auth).toString('base64')}`);
    for (const [name, value] of Object.entries(opts.headers ?? {})) context.setHeaderParam(name, `${value}`);
    if (this.dispatcher.value) context.setDispatcher(this.dispatcher.value);
  }
}

/** A digest of the options that make one TLS configuration (no secret leaves this function). */
function tlsKey(opts: RequestOptions): string {
  const h = createHash('sha256');
  for (const part of [opts.ca, opts.cert, opts.key, opts.pfx, opts.passphrase]) {
    const values = part === undefined ? [] : Array.isArray(part) ? part : [part];
    h.update(`${values.length}:`);
    for (const v of values) {
      const bytes = typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v);
      h.update(`${Buffer.byteLength(bytes)}:`);
      h.update(bytes);
    }
  }
  h.update(`|${opts.rejectUnauthorized}|${opts.servername}`);
  return h.digest('hex');
}

export function kubeClients(kubeconfigPath?: string): Kube {
  const config = new SharedConnectionKubeConfig();
  if (kubeconfigPath) config.loadFromFile(kubeconfigPath);
  else config.loadFromDefault();
  return {
    config,
    core: config.makeApiClient(CoreV1Api),
    custom: config.makeApiClient(CustomObjectsApi),
    coordination: config.makeApiClient(CoordinationV1Api),
    networking: config.makeApiClient(NetworkingV1Api),
  };
}

export const experimentRef = (namespace: string, name: string) => ({
  group: API_GROUP,
  version: API_VERSION,
  plural: EXPERIMENT_PLURAL,
  namespace,
  name,
});

export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function statusCode(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number; response?: { statusCode?: number } };
  return e.code ?? e.statusCode ?? e.response?.statusCode;
}

export const isNotFound = (err: unknown) => statusCode(err) === 404;
export const isConflict = (err: unknown) => statusCode(err) === 409;
export const isAlreadyExists = (err: unknown) => statusCode(err) === 409;

/** A short message for an API error, without the response body's noise. */
export function apiErrorMessage(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  if (typeof e.body === 'string') {
    try {
      const parsed = JSON.parse(e.body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {}
  }
  return e.message ?? String(err);
}

interface Versioned {
  metadata?: { uid?: string; resourceVersion?: string; namespace?: string; name?: string };
}

/**
 * The newest version of each object this controller wrote, for reconciles that read the
 * informer's cache: right after a write the cache may still show a version the write replaced
 * (the watch event is on its way), and acting on that would redo a step. `wrote()` records
 * the object a write returned and the version it replaced; `freshest()` returns that object
 * while the cache shows one of the versions our writes replaced, and the cache's object once
 * it shows anything else (our write arrived, or someone wrote after us). Versions are only
 * compared for equality: resourceVersions are opaque. A write carries the resourceVersion it
 * was based on, so one based on a stale object fails with 409 instead of overwriting.
 */
export class OwnWrites<T extends Versioned> {
  private readonly byUid = new Map<string, { obj: T; replaced: Set<string> }>();

  /** Records that a write based on `previous` returned `written`. */
  wrote(previous: T, written: T): void {
    const uid = written.metadata?.uid;
    const before = previous.metadata?.resourceVersion;
    if (!uid || !written.metadata?.resourceVersion) return;
    const replaced = this.byUid.get(uid)?.replaced ?? new Set<string>();
    if (before) replaced.add(before);
    replaced.delete(written.metadata.resourceVersion);
    this.byUid.set(uid, { obj: written, replaced });
  }

  /** The object to act on: ours while the cache shows a version our writes replaced. */
  freshest(cached: T): T {
    const uid = cached.metadata?.uid;
    const entry = uid ? this.byUid.get(uid) : undefined;
    if (!entry) return cached;
    const rv = cached.metadata?.resourceVersion;
    if (rv !== undefined && entry.replaced.has(rv)) return entry.obj;
    this.byUid.delete(uid!);
    return cached;
  }

  forget(uid: string | undefined): void {
    if (uid) this.byUid.delete(uid);
  }

  /** Forgets a deleted object by name (its uid is gone with it). */
  forgetNamed(namespace: string, name: string): void {
    for (const [uid, { obj }] of this.byUid)
      if (obj.metadata?.namespace === namespace && obj.metadata.name === name) this.byUid.delete(uid);
  }

  /** Objects still ahead of the cache (tests, debugging). */
  size(): number {
    return this.byUid.size;
  }
}
