// The trigger an experiment's spec asks for.
import { parseDurationMs } from '../api/duration.ts';
import type { ExperimentManifest } from '../api/validate-experiment.ts';
import { AwsRdsTrigger, NoneTrigger } from './aws-rds.ts';
import type { FailoverTrigger } from './types.ts';

export function triggerFor(manifest: ExperimentManifest, env: NodeJS.ProcessEnv): FailoverTrigger {
  const { trigger, target } = manifest.spec;
  if (trigger.type === 'none' || !target) return new NoneTrigger();
  // An endpoint override without AWS credentials is the local lab, which accepts any.
  const labCredentials =
    target.rdsEndpoint && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE
      ? { accessKeyId: 'failwatch-lab', secretAccessKey: 'failwatch-lab' }
      : undefined;
  return new AwsRdsTrigger({
    action: trigger.action,
    targetKind: target.kind,
    clusterIdentifier: target.clusterIdentifier,
    instanceIdentifier: target.instanceIdentifier,
    targetInstanceIdentifier: trigger.targetInstanceIdentifier,
    operationInstanceIdentifier: trigger.instanceIdentifier,
    instanceClass: trigger.instanceClass,
    blueGreenDeploymentIdentifier: trigger.blueGreenDeploymentIdentifier,
    globalClusterIdentifier: trigger.globalClusterIdentifier,
    targetDbClusterIdentifier: trigger.targetDbClusterIdentifier,
    allowDataLoss: trigger.allowDataLoss,
    ...(trigger.switchoverTimeout !== undefined
      ? { switchoverTimeoutSeconds: Math.round(parseDurationMs(trigger.switchoverTimeout) / 1000) }
      : {}),
    region: target.region,
    endpoint: target.rdsEndpoint,
    credentials: labCredentials,
  });
}
