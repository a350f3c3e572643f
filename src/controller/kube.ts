// The Kubernetes clients the controller uses, and the few helpers every reconciler needs.
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { API_GROUP, API_VERSION } from '../api/experiment-spec.ts';

export const EXPERIMENT_PLURAL = 'failoverexperiments';
export const FINALIZER = 'failwatch.io/cleanup';
export const LABEL_EXPERIMENT = 'failwatch.io/experiment';
export const LABEL_ENDPOINT = 'failwatch.io/endpoint';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';

export interface Kube {
  config: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
}

export function kubeClients(kubeconfigPath?: string): Kube {
  const config = new KubeConfig();
  if (kubeconfigPath) config.loadFromFile(kubeconfigPath);
  else config.loadFromDefault();
  return {
    config,
    core: config.makeApiClient(CoreV1Api),
    custom: config.makeApiClient(CustomObjectsApi),
    coordination: config.makeApiClient(CoordinationV1Api),
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
