// Who may see a report page, decided by Kubernetes itself (the kube-rbac-proxy pattern): the
// caller's bearer token goes to a TokenReview (who is it?), then a SubjectAccessReview asks
// whether that user may `get failoverexperiments.failwatch.io` in the namespace (or across
// namespaces, for the index). Decisions are cached for a few seconds, keyed by a digest of
// the token (never the token itself), so a page with many requests costs two API calls.
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, AuthorizationV1Api } from '@kubernetes/client-node';
import { API_GROUP } from '../api/experiment-spec.ts';
import { EXPERIMENT_PLURAL, type Kube } from '../controller/kube.ts';

export interface Caller {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What the report pages ask: who is this, and may they get experiments there. */
export interface ReportAuthorizer {
  /** The caller a token belongs to, or undefined when the apiserver does not accept it. */
  authenticate(token: string): Promise<Caller | undefined>;
  /** May `caller` get FailoverExperiments in `namespace` (undefined: in every namespace), or `name` there. */
  mayGet(caller: Caller, namespace: string | undefined, name?: string): Promise<boolean>;
}

interface Entry<T> {
  value: T;
  expiresMs: number;
}

/** A small TTL cache; cleared when it grows past `max` (a flood of distinct tokens). */
class TtlCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #ttlMs: number;
  readonly #max: number;
  constructor(ttlMs: number, max = 10_000) {
    this.#ttlMs = ttlMs;
    this.#max = max;
  }
  async get(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.#entries.get(key);
    if (hit && hit.expiresMs > now) return hit.value;
    const value = await load();
    if (this.#entries.size >= this.#max) this.#entries.clear();
    this.#entries.set(key, { value, expiresMs: now + this.#ttlMs });
    return value;
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/** Authenticates and authorizes through the apiserver (RBAC: create tokenreviews, subjectaccessreviews). */
export class KubeReportAuthorizer implements ReportAuthorizer {
  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #callers: TtlCache<Caller | undefined>;
  readonly #decisions: TtlCache<boolean>;

  constructor(kube: Pick<Kube, 'config'>, ttlMs = 10_000) {
    this.#authn = kube.config.makeApiClient(AuthenticationV1Api);
    this.#authz = kube.config.makeApiClient(AuthorizationV1Api);
    this.#callers = new TtlCache(ttlMs);
    this.#decisions = new TtlCache(ttlMs);
  }

  authenticate(token: string): Promise<Caller | undefined> {
    return this.#callers.get(digest(token), async () => {
      const review = await this.#authn.createTokenReview({ body: { spec: { token } } });
      const user = review.status?.user;
      if (!review.status?.authenticated || !user?.username) return undefined;
      return {
        username: user.username,
        ...(user.uid ? { uid: user.uid } : {}),
        groups: user.groups ?? [],
        ...(user.extra ? { extra: user.extra } : {}),
      };
    });
  }

  mayGet(caller: Caller, namespace: string | undefined, name?: string): Promise<boolean> {
    const key = digest(
      JSON.stringify([caller.username, caller.uid, caller.groups, caller.extra, namespace, name]),
    );
    return this.#decisions.get(key, async () => {
      const review = await this.#authz.createSubjectAccessReview({
        body: {
          spec: {
            user: caller.username,
            groups: caller.groups,
            ...(caller.uid ? { uid: caller.uid } : {}),
            ...(caller.extra ? { extra: caller.extra } : {}),
            resourceAttributes: {
              group: API_GROUP,
              resource: EXPERIMENT_PLURAL,
              verb: 'get',
              ...(namespace !== undefined ? { namespace } : {}),
              ...(name !== undefined ? { name } : {}),
            },
          },
        },
      });
      return review.status?.allowed === true && review.status.denied !== true;
    });
  }
}
