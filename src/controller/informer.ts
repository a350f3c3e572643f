// Informers that survive watch failures: client-node's informer stops on any watch error but
// 410 Gone; these restart with backoff and say whether their first list has succeeded.
import { type KubernetesObject, makeInformer } from '@kubernetes/client-node';
import type pino from 'pino';
import { apiErrorMessage, type Kube } from './kube.ts';

/**
 * An informer that restarts with backoff after a watch error (client-node's stop on any error
 * but 410) and knows whether it is synced. Its start() resolves even when the list or the
 * watch failed (that comes as an error event first), so synced means: a start resolved with
 * no error event since it began.
 */
export function restartingInformer<T extends KubernetesObject>(opts: {
  what: string;
  kube: Kube;
  log: pino.Logger;
  path: string;
  labelSelector?: string;
  list: () => Promise<unknown>;
  isStopped: () => boolean;
}) {
  let failed = false;
  let synced = false;
  /** Since when the informer has had no working list/watch (undefined: it works, or not started). */
  let brokenSinceMs: number | undefined;
  let delayMs = 500;
  let onFirstSync: (() => void) | undefined;
  const informer = makeInformer<T>(
    opts.kube.config,
    opts.path,
    () => opts.list() as never,
    opts.labelSelector,
  );
  const start = () => {
    failed = false;
    brokenSinceMs ??= Date.now();
    informer.start().then(
      () => {
        if (failed) return; // the error handler restarts it
        delayMs = 500;
        brokenSinceMs = undefined;
        if (synced) return;
        synced = true;
        if (!opts.isStopped()) onFirstSync?.();
      },
      (err) => opts.log.error({ err: apiErrorMessage(err), informer: opts.what }, 'informer start failed'),
    );
  };
  informer.on('error', (err) => {
    failed = true;
    brokenSinceMs ??= Date.now();
    if (opts.isStopped()) return;
    opts.log.warn(
      { err: apiErrorMessage(err), informer: opts.what },
      'watch failed; restarting the informer',
    );
    setTimeout(() => {
      if (!opts.isStopped()) start();
    }, delayMs).unref();
    delayMs = Math.min(delayMs * 2, 30_000);
  });
  return {
    informer,
    /** True once a start succeeded; stays true through restarts (the cache stays). */
    synced: () => synced,
    /** How long the list/watch has not worked (before the first sync, or since an error); 0 when it works. */
    brokenForMs: (nowMs = Date.now()) => (brokenSinceMs === undefined ? 0 : nowMs - brokenSinceMs),
    start(then?: () => void) {
      onFirstSync = then;
      start();
    },
  };
}

export type RestartingInformer<T extends KubernetesObject> = ReturnType<typeof restartingInformer<T>>;

/** What one informer watches: its path and list call, for all namespaces or one. */
export interface WatchTarget {
  path: string;
  list: () => Promise<unknown>;
}

/**
 * One restartingInformer cluster-wide (`namespaces` undefined or empty), or one per namespace
 * (`--namespaces`: RBAC by Roles in those namespaces only) behind the same interface: get and
 * list read the namespace's own cache, events come from all, synced means all are synced.
 */
export function watchNamespaces<T extends KubernetesObject>(
  opts: Omit<Parameters<typeof restartingInformer<T>>[0], 'path' | 'list'> & {
    namespaces?: readonly string[];
    target: (namespace?: string) => WatchTarget;
  },
) {
  const namespaces = opts.namespaces?.length ? opts.namespaces : undefined;
  const parts = new Map(
    (namespaces ?? ['']).map((ns) => [
      ns,
      restartingInformer<T>({ ...opts, ...opts.target(ns || undefined) }),
    ]),
  );
  const all = [...parts.values()];
  const of = (namespace?: string) => (namespaces ? parts.get(namespace ?? '') : all[0]);
  return {
    informer: {
      get: (name: string, namespace?: string) => of(namespace)?.informer.get(name, namespace),
      list: (namespace?: string): readonly T[] =>
        namespace === undefined
          ? all.flatMap((p) => p.informer.list())
          : (of(namespace)?.informer.list(namespace) ?? []),
      on: (event: 'add' | 'update' | 'delete', fn: (obj: T) => void) => {
        for (const p of all) p.informer.on(event, fn);
      },
      stop: async () => {
        await Promise.all(all.map((p) => p.informer.stop().catch(() => {})));
      },
    },
    synced: () => all.every((p) => p.synced()),
    brokenForMs: (nowMs = Date.now()) => Math.max(...all.map((p) => p.brokenForMs(nowMs))),
    start(then?: () => void) {
      let waiting = all.length;
      for (const p of all)
        p.start(() => {
          if (--waiting === 0) then?.();
        });
    },
  };
}
