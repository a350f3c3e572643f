// The FailoverExperiment spec (failwatch.io/v1alpha1), defined once. It gives:
// - the TS types: FailoverExperimentSpecInput (what a user writes) and FailoverExperimentSpec
//   (after defaults), with the types of its parts;
// - the runtime validation (validate-experiment.ts);
// - the CRD's structural OpenAPI schema (openapi-schema.ts).
// Every property carries a description: it is what `kubectl explain` shows.
import Type, { type Static } from 'typebox';
import { isDuration, parseDurationMs } from './duration.ts';
import { DNS_SUBDOMAIN_PATTERN } from './kube-patterns.ts';
import { placementSchema } from './prober-placement.ts';
import { celIsDuration, defaulted, durationString, stringEnum, withRules } from './schema-builders.ts';

export const API_GROUP = 'failwatch.io';
export const API_VERSION = 'v1alpha1';
export const EXPERIMENT_API_VERSION = `${API_GROUP}/${API_VERSION}`;
export const EXPERIMENT_KIND = 'FailoverExperiment';

export const DIALECTS = ['aurora-postgresql', 'postgresql', 'aurora-mysql', 'mysql'] as const;
export const ENDPOINT_ROLES = ['cluster', 'reader', 'proxy', 'instance', 'custom'] as const;
export const PROBE_KIND_NAMES = ['write', 'read', 'dns', 'topology'] as const;
export const CONNECTION_MODES = ['fresh', 'pooled'] as const;
/** Which client probes an endpoint: the plain driver, or the AWS Advanced NodeJS Wrapper. */
export const CLIENT_STACKS = ['driver', 'aws-advanced-nodejs-wrapper'] as const;
export const WRAPPER_STACK = 'aws-advanced-nodejs-wrapper';
/**
 * Wrapper plugins a spec may name: the failover and monitoring ones. Plugins that reach out
 * with the pod's credentials (iam, secretsManager, federatedAuth, okta, customEndpoint) are
 * not offered: a spec must not point a prober anywhere but at its database.
 */
export const WRAPPER_PLUGINS = [
  'failover',
  'failover2',
  'efm',
  'efm2',
  'auroraConnectionTracker',
  'staleDns',
  'initialConnection',
] as const;
export const TLS_MODES = ['disable', 'require', 'verify-full'] as const;
export const TARGET_KINDS = ['aurora-cluster', 'multi-az-db-cluster', 'rds-instance'] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];
/** Target kinds that are DB clusters (DescribeDBClusters, FailoverDBCluster). */
export function isClusterKind(kind: string | undefined): boolean {
  return kind === undefined || kind === 'aurora-cluster' || kind === 'multi-az-db-cluster';
}
export const TRIGGER_TYPES = ['aws-rds', 'none'] as const;
export const TRIGGER_ACTIONS = [
  'failover-db-cluster',
  'reboot-db-instance-force-failover',
  'reboot-db-instance',
  'modify-db-instance-class',
  'switchover-blue-green-deployment',
  'switchover-global-cluster',
  'failover-global-cluster',
] as const;
export type TriggerAction = (typeof TRIGGER_ACTIONS)[number];
/**
 * Actions that restart one instance in place (no new writer): they count as observed when the
 * instance leaves and returns to `available`, or the probes see the same server come back.
 */
export const INSTANCE_RESTART_ACTIONS = ['reboot-db-instance', 'modify-db-instance-class'] as const;
export function isInstanceRestartAction(action: string | undefined): boolean {
  return (INSTANCE_RESTART_ACTIONS as readonly string[]).includes(action ?? '');
}

/** Actions on an Aurora Global Database (the target is its primary cluster). */
export const GLOBAL_ACTIONS = ['switchover-global-cluster', 'failover-global-cluster'] as const;
export function isGlobalAction(action: string | undefined): boolean {
  return (GLOBAL_ACTIONS as readonly string[]).includes(action ?? '');
}
/** An RDS GlobalClusterIdentifier. */
export const GLOBAL_CLUSTER_ID_PATTERN = '^[a-zA-Z][a-zA-Z0-9-]{0,254}$';
/** A DB cluster's ARN (a Global Database names its secondary by ARN: it lives in another region). */
export const CLUSTER_ARN_PATTERN =
  '^arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:cluster:[a-zA-Z][a-zA-Z0-9-]{0,62}$';

/** RDS BlueGreenDeploymentIdentifier, e.g. bgd-wi89nwzglccsfake. */
export const BLUE_GREEN_ID_PATTERN = '^[a-zA-Z][0-9a-zA-Z-]{0,254}$';

/** Lowercase DNS label: endpoint names end up in pod names, labels and metric labels. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** RDS DBClusterIdentifier / DBInstanceIdentifier. */
export const RDS_IDENTIFIER_PATTERN = '^[a-zA-Z][a-zA-Z0-9-]{0,62}$';
export const SQL_IDENTIFIER_PATTERN = '^[a-zA-Z_][a-zA-Z0-9_]{0,62}$';
export const HOST_PORT_PATTERN =
  '^[a-zA-Z0-9]([-a-zA-Z0-9.]*[a-zA-Z0-9])?:[0-9]{1,5}$|^\\[[0-9a-fA-F:.]+\\]:[0-9]{1,5}$';
/** A host name (RFC 1123 labels, optional final dot; IPv4 fits) or an IPv6 address: it reaches DNS. */
export const HOST_PATTERN =
  '^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?)*\\.?$|^[0-9a-fA-F.]*:[0-9a-fA-F:.]*$';
/** A key of a Secret's data. */
export const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
/** A database user name: conservative (RDS IAM users included), never quoted into SQL. */
export const DB_USER_PATTERN = '^[a-zA-Z_][a-zA-Z0-9_.@-]{0,127}$';
export const HTTP_URL_PATTERN = '^https?://[^\\s]+$';
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
export const AWS_REGION_PATTERN = '^[a-z]{2}(-[a-z]+)+-[0-9]+$';
/** An RDS DB instance class, e.g. db.r6g.large, db.t4g.medium, db.serverless. */
export const INSTANCE_CLASS_PATTERN = '^db\\.[a-z0-9]+(\\.[a-z0-9]+)?$';

export const MAX_ENDPOINTS = 16;

function sloSchema(description: string) {
  return Type.Object(
    {
      maxWriteDowntime: Type.Optional(
        durationString({
          description: "Fail the run when an endpoint's write downtime is longer than this.",
        }),
      ),
      maxReadDowntime: Type.Optional(
        durationString({ description: "Fail the run when an endpoint's read downtime is longer than this." }),
      ),
      maxLostWrites: Type.Optional(
        Type.Integer({
          minimum: 0,
          description:
            'Fail the run when more acknowledged writes than this are missing after recovery (lost writes).',
        }),
      ),
    },
    { description, additionalProperties: false },
  );
}

function targetSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      kind: defaulted(
        resolved,
        stringEnum(TARGET_KINDS, {
          default: 'aurora-cluster',
          description:
            'What fails over: an Aurora DB cluster (aurora-cluster), a Multi-AZ DB cluster (multi-az-db-cluster: RDS for PostgreSQL or MySQL with a writer and two readable standbys), or a Multi-AZ RDS DB instance (rds-instance).',
        }),
      ),
      clusterIdentifier: Type.Optional(
        Type.String({
          pattern: RDS_IDENTIFIER_PATTERN,
          maxLength: 63,
          description: 'DBClusterIdentifier of the cluster (kind aurora-cluster or multi-az-db-cluster).',
        }),
      ),
      instanceIdentifier: Type.Optional(
        Type.String({
          pattern: RDS_IDENTIFIER_PATTERN,
          maxLength: 63,
          description: 'DBInstanceIdentifier of the Multi-AZ instance (kind rds-instance).',
        }),
      ),
      region: Type.Optional(
        Type.String({
          pattern: AWS_REGION_PATTERN,
          maxLength: 32,
          description:
            'AWS region, e.g. ap-northeast-1. Defaults to the region of the AWS SDK configuration.',
        }),
      ),
      rdsEndpoint: Type.Optional(
        Type.String({
          pattern: HTTP_URL_PATTERN,
          maxLength: 2048,
          description: "Override of the RDS API URL, e.g. the local lab's http://127.0.0.1:4599.",
        }),
      ),
    },
    { additionalProperties: false, description: 'The database that fails over.' },
  );
  return withRules<typeof schema, { kind?: string; clusterIdentifier?: string; instanceIdentifier?: string }>(
    schema,
    [
      {
        cel: "self.kind == 'rds-instance' || has(self.clusterIdentifier)",
        fieldPath: '.clusterIdentifier',
        message: 'clusterIdentifier is required when kind is aurora-cluster or multi-az-db-cluster',
        check: (self) => !isClusterKind(self.kind) || self.clusterIdentifier !== undefined,
      },
      {
        cel: "self.kind != 'rds-instance' || has(self.instanceIdentifier)",
        fieldPath: '.instanceIdentifier',
        message: 'instanceIdentifier is required when kind is rds-instance',
        check: (self) => self.kind !== 'rds-instance' || self.instanceIdentifier !== undefined,
      },
    ],
  );
}

function triggerSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      type: stringEnum(TRIGGER_TYPES, {
        description:
          'aws-rds: failwatch calls the RDS API once, after a healthy baseline. none: observe only; the failover is done by hand or by something else.',
      }),
      action: defaulted(
        resolved,
        stringEnum(TRIGGER_ACTIONS, {
          default: 'failover-db-cluster',
          description:
            'aws-rds call: failover-db-cluster (FailoverDBCluster: an Aurora or Multi-AZ DB cluster), reboot-db-instance-force-failover (RebootDBInstance with ForceFailover, Multi-AZ instance), reboot-db-instance (RebootDBInstance without failover: the instance restarts in place), modify-db-instance-class (ModifyDBInstance with DBInstanceClass and ApplyImmediately: the instance restarts with the new class), switchover-blue-green-deployment (SwitchoverBlueGreenDeployment of an existing deployment whose blue environment is the target), switchover-global-cluster (SwitchoverGlobalCluster: the Global Database whose primary is the target promotes targetDbClusterIdentifier, without data loss) or failover-global-cluster (FailoverGlobalCluster; with allowDataLoss an unplanned failover that may lose writes).',
        }),
      ),
      targetInstanceIdentifier: Type.Optional(
        Type.String({
          pattern: RDS_IDENTIFIER_PATTERN,
          maxLength: 63,
          description:
            'failover-db-cluster only: the reader instance to promote (TargetDBInstanceIdentifier).',
        }),
      ),
      instanceIdentifier: Type.Optional(
        Type.String({
          pattern: RDS_IDENTIFIER_PATTERN,
          maxLength: 63,
          description:
            "reboot-db-instance and modify-db-instance-class on an aurora-cluster target: the member instance to reboot or modify; default the cluster's writer.",
        }),
      ),
      instanceClass: Type.Optional(
        Type.String({
          pattern: INSTANCE_CLASS_PATTERN,
          maxLength: 64,
          description:
            'modify-db-instance-class only (and required there): the new DBInstanceClass, e.g. db.r6g.xlarge. It must differ from the current class.',
        }),
      ),
      blueGreenDeploymentIdentifier: Type.Optional(
        Type.String({
          pattern: BLUE_GREEN_ID_PATTERN,
          maxLength: 255,
          description:
            'switchover-blue-green-deployment only (and required there): the BlueGreenDeploymentIdentifier (bgd-...). Its blue environment (Source) must be the target; it must be AVAILABLE.',
        }),
      ),
      globalClusterIdentifier: Type.Optional(
        Type.String({
          pattern: GLOBAL_CLUSTER_ID_PATTERN,
          maxLength: 255,
          description:
            'switchover-global-cluster and failover-global-cluster only (and required there): the GlobalClusterIdentifier. Its primary (writer) cluster must be the target.',
        }),
      ),
      targetDbClusterIdentifier: Type.Optional(
        Type.String({
          pattern: CLUSTER_ARN_PATTERN,
          maxLength: 2048,
          description:
            "switchover-global-cluster and failover-global-cluster only (and required there): the ARN of the secondary cluster to promote (TargetDbClusterIdentifier), e.g. arn:aws:rds:us-west-2:123456789012:cluster:orders-west. The controller's allowlist must admit it too.",
        }),
      ),
      allowDataLoss: Type.Optional(
        Type.Boolean({
          description:
            'failover-global-cluster only: AllowDataLoss, an unplanned failover that promotes the secondary at once; writes the primary acknowledged and the secondary never received are lost (the lost-write audit counts them: the RPO). Off: RDS switches over without data loss.',
        }),
      ),
      switchoverTimeout: Type.Optional(
        durationString({
          min: '30s',
          max: '1h',
          description:
            'switchover-blue-green-deployment only: SwitchoverTimeout, after which RDS rolls the switchover back (RDS default 5m). Whole seconds are sent.',
        }),
      ),
    },
    {
      additionalProperties: false,
      description: 'How the failover or operation is started. It fires at most once per experiment.',
    },
  );
  return withRules<
    typeof schema,
    {
      action?: string;
      targetInstanceIdentifier?: string;
      instanceIdentifier?: string;
      instanceClass?: string;
      blueGreenDeploymentIdentifier?: string;
      switchoverTimeout?: string;
      globalClusterIdentifier?: string;
      targetDbClusterIdentifier?: string;
      allowDataLoss?: boolean;
    }
  >(schema, [
    {
      cel: "!has(self.targetInstanceIdentifier) || self.action == 'failover-db-cluster'",
      fieldPath: '.targetInstanceIdentifier',
      message: 'targetInstanceIdentifier applies only to action failover-db-cluster',
      check: (self) =>
        self.targetInstanceIdentifier === undefined ||
        (self.action ?? 'failover-db-cluster') === 'failover-db-cluster',
    },
    {
      cel: "!has(self.instanceIdentifier) || (has(self.action) && self.action in ['reboot-db-instance', 'modify-db-instance-class'])",
      fieldPath: '.instanceIdentifier',
      message: 'instanceIdentifier applies only to actions reboot-db-instance and modify-db-instance-class',
      check: (self) => self.instanceIdentifier === undefined || isInstanceRestartAction(self.action),
    },
    {
      cel: "!has(self.action) || self.action != 'modify-db-instance-class' || has(self.instanceClass)",
      fieldPath: '.instanceClass',
      message: 'instanceClass is required when action is modify-db-instance-class, e.g. db.r6g.xlarge',
      check: (self) => self.action !== 'modify-db-instance-class' || self.instanceClass !== undefined,
    },
    {
      cel: "!has(self.instanceClass) || (has(self.action) && self.action == 'modify-db-instance-class')",
      fieldPath: '.instanceClass',
      message: 'instanceClass applies only to action modify-db-instance-class',
      check: (self) => self.instanceClass === undefined || self.action === 'modify-db-instance-class',
    },
    {
      cel: "!has(self.action) || self.action != 'switchover-blue-green-deployment' || has(self.blueGreenDeploymentIdentifier)",
      fieldPath: '.blueGreenDeploymentIdentifier',
      message:
        'blueGreenDeploymentIdentifier is required when action is switchover-blue-green-deployment, e.g. bgd-wi89nwzglccsfake',
      check: (self) =>
        self.action !== 'switchover-blue-green-deployment' ||
        self.blueGreenDeploymentIdentifier !== undefined,
    },
    {
      cel: "!has(self.blueGreenDeploymentIdentifier) || (has(self.action) && self.action == 'switchover-blue-green-deployment')",
      fieldPath: '.blueGreenDeploymentIdentifier',
      message: 'blueGreenDeploymentIdentifier applies only to action switchover-blue-green-deployment',
      check: (self) =>
        self.blueGreenDeploymentIdentifier === undefined ||
        self.action === 'switchover-blue-green-deployment',
    },
    {
      cel: "!has(self.switchoverTimeout) || (has(self.action) && self.action == 'switchover-blue-green-deployment')",
      fieldPath: '.switchoverTimeout',
      message: 'switchoverTimeout applies only to action switchover-blue-green-deployment',
      check: (self) =>
        self.switchoverTimeout === undefined || self.action === 'switchover-blue-green-deployment',
    },
    {
      cel: "!has(self.action) || !(self.action in ['switchover-global-cluster', 'failover-global-cluster']) || (has(self.globalClusterIdentifier) && has(self.targetDbClusterIdentifier))",
      fieldPath: '.globalClusterIdentifier',
      message:
        'globalClusterIdentifier and targetDbClusterIdentifier (the ARN of the secondary cluster to promote) are required when action is switchover-global-cluster or failover-global-cluster',
      check: (self) =>
        !isGlobalAction(self.action) ||
        (self.globalClusterIdentifier !== undefined && self.targetDbClusterIdentifier !== undefined),
    },
    {
      cel: "(!has(self.globalClusterIdentifier) && !has(self.targetDbClusterIdentifier)) || (has(self.action) && self.action in ['switchover-global-cluster', 'failover-global-cluster'])",
      fieldPath: '.globalClusterIdentifier',
      message:
        'globalClusterIdentifier and targetDbClusterIdentifier apply only to actions switchover-global-cluster and failover-global-cluster',
      check: (self) =>
        (self.globalClusterIdentifier === undefined && self.targetDbClusterIdentifier === undefined) ||
        isGlobalAction(self.action),
    },
    {
      cel: "!has(self.allowDataLoss) || (has(self.action) && self.action == 'failover-global-cluster')",
      fieldPath: '.allowDataLoss',
      message: 'allowDataLoss applies only to action failover-global-cluster',
      check: (self) => self.allowDataLoss === undefined || self.action === 'failover-global-cluster',
    },
  ]);
}

function tlsSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      mode: defaulted(
        resolved,
        stringEnum(TLS_MODES, {
          default: 'require',
          description:
            'disable: plain TCP. require: TLS without certificate checks. verify-full: TLS, CA and host name checked.',
        }),
      ),
      caSecretRef: Type.Optional(
        Type.Object(
          {
            name: Type.String({
              minLength: 1,
              maxLength: 253,
              pattern: DNS_SUBDOMAIN_PATTERN,
              description: "Secret in the experiment's namespace.",
            }),
            key: defaulted(
              resolved,
              Type.String({
                default: 'ca.crt',
                maxLength: 253,
                pattern: SECRET_KEY_PATTERN,
                description: 'Key of the PEM CA bundle.',
              }),
            ),
          },
          {
            additionalProperties: false,
            description: 'Kubernetes: Secret holding the CA bundle for verify-full.',
          },
        ),
      ),
      caFile: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 4096,
          description: 'failwatch run: path of the PEM CA bundle for verify-full.',
        }),
      ),
    },
    { additionalProperties: false, default: {}, description: 'TLS to the database.' },
  );
  return withRules<typeof schema, { caSecretRef?: unknown; caFile?: string }>(schema, [
    {
      cel: '!(has(self.caSecretRef) && has(self.caFile))',
      fieldPath: '.caFile',
      message: 'set caSecretRef or caFile, not both',
      check: (self) => !(self.caSecretRef !== undefined && self.caFile !== undefined),
    },
  ]);
}

function credentialsSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      secretRef: Type.Optional(
        Type.Object(
          {
            name: Type.String({
              minLength: 1,
              maxLength: 253,
              pattern: DNS_SUBDOMAIN_PATTERN,
              description: "Secret in the experiment's namespace.",
            }),
            usernameKey: defaulted(
              resolved,
              Type.String({
                default: 'username',
                maxLength: 253,
                pattern: SECRET_KEY_PATTERN,
                description: 'Key of the user name in the Secret.',
              }),
            ),
            passwordKey: defaulted(
              resolved,
              Type.String({
                default: 'password',
                maxLength: 253,
                pattern: SECRET_KEY_PATTERN,
                description: 'Key of the password in the Secret.',
              }),
            ),
          },
          {
            additionalProperties: false,
            description: "Kubernetes: the Secret with the probe user's credentials.",
          },
        ),
      ),
      username: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 128,
          pattern: DB_USER_PATTERN,
          description: "failwatch run: the probe user's name.",
        }),
      ),
      passwordEnv: Type.Optional(
        Type.String({
          pattern: ENV_NAME_PATTERN,
          maxLength: 128,
          description:
            'failwatch run: environment variable holding the password (never the password itself).',
        }),
      ),
      iam: Type.Optional(iamCredentialsSchema()),
    },
    {
      additionalProperties: false,
      description:
        'Database credentials, exactly one of: secretRef (Kubernetes), username with passwordEnv (failwatch run), or iam (IAM database authentication, both).',
    },
  );
  return withRules<
    typeof schema,
    { secretRef?: unknown; username?: string; passwordEnv?: string; iam?: unknown }
  >(schema, [
    {
      cel: '[has(self.secretRef), has(self.username), has(self.iam)].filter(x, x).size() == 1',
      message:
        'set exactly one of secretRef (Kubernetes), username with passwordEnv (failwatch run), or iam (IAM database authentication)',
      check: (self) =>
        [self.secretRef, self.username, self.iam].filter((value) => value !== undefined).length === 1,
    },
    {
      cel: '!has(self.passwordEnv) || has(self.username)',
      fieldPath: '.passwordEnv',
      message: 'passwordEnv needs username',
      check: (self) => self.passwordEnv === undefined || self.username !== undefined,
    },
  ]);
}

/** IAM database authentication: the password of each new connection is an RDS auth token. */
function iamCredentialsSchema() {
  return Type.Object(
    {
      username: Type.String({
        minLength: 1,
        maxLength: 128,
        description:
          'Database user that logs in with IAM tokens (PostgreSQL: GRANT rds_iam; MySQL: IDENTIFIED WITH AWSAuthenticationPlugin). The IAM policy must allow rds-db:connect for it.',
      }),
      region: Type.Optional(
        Type.String({
          pattern: AWS_REGION_PATTERN,
          maxLength: 32,
          description:
            "Region the tokens are signed for; default the target's region, else the AWS SDK's (AWS_REGION).",
        }),
      ),
      serviceAccountName: Type.Optional(
        Type.String({
          pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
          maxLength: 253,
          description:
            "Kubernetes: ServiceAccount the prober pod runs as, the one IRSA (eks.amazonaws.com/role-arn) or EKS Pod Identity gives the IAM role; default the namespace's default ServiceAccount.",
        }),
      ),
    },
    {
      additionalProperties: false,
      description:
        'IAM database authentication: tokens from @aws-sdk/rds-signer with the default AWS credential chain (environment, IRSA, EKS Pod Identity), reused for 10 of their 15 minutes. Needs TLS.',
    },
  );
}

function dnsSchema<R extends boolean>(resolved: R) {
  return Type.Object(
    {
      server: Type.Optional(
        Type.String({
          pattern: HOST_PORT_PATTERN,
          maxLength: 64,
          description: 'DNS server as ip:port for the dns probe; default: the system resolver.',
        }),
      ),
      interval: defaulted(
        resolved,
        durationString({ default: '500ms', min: '10ms', description: 'Time between dns probe attempts.' }),
      ),
    },
    {
      additionalProperties: false,
      default: {},
      description: 'The dns probe: resolves host (CNAME chain and addresses).',
    },
  );
}

function topologySchema<R extends boolean>(resolved: R) {
  return Type.Object(
    {
      interval: defaulted(
        resolved,
        durationString({
          default: '100ms',
          min: '10ms',
          description: 'Time between topology probe attempts (each asks every instance once).',
        }),
      ),
      instanceHostPattern: Type.Optional(
        Type.String({
          pattern: '^\\?\\.[A-Za-z0-9.-]+(:[0-9]{1,5})?$',
          maxLength: 253,
          description:
            "How instance names are built from the cluster's instance identifiers, e.g. ?.abc123.us-east-1.rds.amazonaws.com; default: derived from host (an RDS cluster, reader, custom or proxy endpoint name).",
        }),
      ),
    },
    {
      additionalProperties: false,
      default: {},
      description:
        "The topology probe: asks each of the cluster's instances whether it is the writer, so the run shows when the database itself lost and found its writer.",
    },
  );
}

function clientSchema<R extends boolean>(resolved: R) {
  return Type.Object(
    {
      stack: defaulted(
        resolved,
        stringEnum(CLIENT_STACKS, {
          default: 'driver',
          description:
            'driver: node-postgres / mysql2 alone, following DNS. aws-advanced-nodejs-wrapper: the AWS Advanced NodeJS Wrapper (2.0.1) around the driver (Aurora PostgreSQL or MySQL), which reads the cluster topology from SQL and reconnects to the new writer itself.',
        }),
      ),
      plugins: Type.Optional(
        Type.Array(stringEnum(WRAPPER_PLUGINS, { description: 'A wrapper plugin code.' }), {
          minItems: 1,
          maxItems: WRAPPER_PLUGINS.length,
          uniqueItems: true,
          description:
            "Wrapper only: its plugins, e.g. [failover2, efm2]; default the wrapper's own default (auroraConnectionTracker, failover, efm2).",
        }),
      ),
      clusterInstanceHostPattern: Type.Optional(
        Type.String({
          pattern: '^\\?\\.[A-Za-z0-9.-]+(:[0-9]{1,5})?$',
          maxLength: 253,
          description:
            "Wrapper only: how instance names are built from the topology's instance identifiers, e.g. ?.abc123.us-east-1.rds.amazonaws.com; needed when the endpoint's host is not an RDS name.",
        }),
      ),
      failoverTimeout: Type.Optional(
        durationString({
          min: '1s',
          max: '5m',
          description:
            "Wrapper only: its failoverTimeoutMs, the longest a call may spend in the wrapper's failover; default 30s here (the wrapper's own default is 5m).",
        }),
      ),
    },
    {
      additionalProperties: false,
      default: {},
      description: 'Which client stack probes this endpoint.',
    },
  );
}

interface EndpointRuleView {
  host?: string;
  topology?: { instanceHostPattern?: string };
  tls?: { mode?: string };
  dialect?: string;
  connectionMode?: string;
  interval?: string;
  client?: {
    stack?: string;
    plugins?: string[];
    clusterInstanceHostPattern?: string;
    failoverTimeout?: string;
  };
  credentials?: { iam?: unknown };
  role?: string;
  probes?: string[];
  slowThreshold?: string;
  connectTimeout?: string;
  queryTimeout?: string;
}

function endpointSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      name: Type.String({
        pattern: DNS_LABEL_PATTERN,
        maxLength: 63,
        description:
          'Unique name of the endpoint in this experiment (a lowercase DNS label), e.g. cluster, reader, proxy.',
      }),
      dialect: stringEnum(DIALECTS, {
        description: 'Database engine and flavour; decides the driver and the server-identity queries.',
      }),
      host: Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: HOST_PATTERN,
        description: 'Host name or address the applications use, e.g. the cluster endpoint DNS name.',
      }),
      port: Type.Optional(
        Type.Integer({
          minimum: 1,
          maximum: 65535,
          description: 'TCP port; default 5432 for PostgreSQL dialects, 3306 for MySQL.',
        }),
      ),
      database: Type.String({
        minLength: 1,
        maxLength: 63,
        pattern: SQL_IDENTIFIER_PATTERN,
        description: 'Database that holds the probe table.',
      }),
      role: defaulted(
        resolved,
        stringEnum(ENDPOINT_ROLES, {
          default: 'custom',
          description:
            'What the endpoint is: cluster (writer) endpoint, reader endpoint, proxy (RDS Proxy), instance endpoint or a custom endpoint.',
        }),
      ),
      probes: defaulted(
        resolved,
        Type.Array(stringEnum(PROBE_KIND_NAMES, { description: 'A probe kind.' }), {
          minItems: 1,
          maxItems: PROBE_KIND_NAMES.length,
          uniqueItems: true,
          default: ['write', 'read'],
          description:
            "Probe kinds: write (insert a row), read (a trivial query), dns (resolve host), topology (ask each Aurora instance whether it is the writer: the run's failover phases).",
        }),
      ),
      connectionMode: defaulted(
        resolved,
        stringEnum(CONNECTION_MODES, {
          default: 'fresh',
          description:
            'fresh: a new connection per attempt (like short-lived clients). pooled: persistent connections (like an application pool).',
        }),
      ),
      interval: defaulted(
        resolved,
        durationString({
          default: '100ms',
          min: '10ms',
          description: 'Time between attempt starts (fixed rate; attempts may overlap).',
        }),
      ),
      connectTimeout: defaulted(
        resolved,
        durationString({
          default: '1s',
          min: '1ms',
          max: '5m',
          description: 'Deadline to connect, per attempt.',
        }),
      ),
      queryTimeout: defaulted(
        resolved,
        durationString({
          default: '1s',
          min: '1ms',
          max: '5m',
          description: 'Deadline for the query, per attempt.',
        }),
      ),
      slowThreshold: defaulted(
        resolved,
        durationString({
          default: '500ms',
          min: '1ms',
          description:
            'A successful attempt slower than this is classed slow (a stall) and counts as unavailable.',
        }),
      ),
      tls: defaulted(resolved, tlsSchema(resolved)),
      credentials: credentialsSchema(resolved),
      dns: defaulted(resolved, dnsSchema(resolved)),
      client: defaulted(resolved, clientSchema(resolved)),
      topology: defaulted(resolved, topologySchema(resolved)),
      slo: Type.Optional(sloSchema('Objectives for this endpoint; each field overrides spec.slo.')),
      probers: Type.Optional(placementSchema(true)),
    },
    {
      additionalProperties: false,
      description: 'One endpoint to probe, as the applications reach the database.',
    },
  );
  const wrapper = `has(self.client) && has(self.client.stack) && self.client.stack == '${WRAPPER_STACK}'`;
  const isWrapper = (self: EndpointRuleView) => self.client?.stack === WRAPPER_STACK;
  return withRules<typeof schema, EndpointRuleView>(schema, [
    {
      cel: `${wrapper} || !has(self.client) || (!has(self.client.plugins) && !has(self.client.clusterInstanceHostPattern) && !has(self.client.failoverTimeout))`,
      fieldPath: '.client',
      message: `plugins, clusterInstanceHostPattern and failoverTimeout configure the wrapper: set client.stack: ${WRAPPER_STACK}, or drop them`,
      check: (self) =>
        isWrapper(self) ||
        (self.client?.plugins === undefined &&
          self.client?.clusterInstanceHostPattern === undefined &&
          self.client?.failoverTimeout === undefined),
    },
    {
      cel: `!(${wrapper}) || (has(self.dialect) && (self.dialect == 'aurora-postgresql' || self.dialect == 'aurora-mysql'))`,
      fieldPath: '.client.stack',
      message: `the ${WRAPPER_STACK} stack probes Aurora clusters: dialect aurora-postgresql or aurora-mysql`,
      check: (self) =>
        !isWrapper(self) || self.dialect === 'aurora-postgresql' || self.dialect === 'aurora-mysql',
    },
    {
      cel: `!(${wrapper}) || !has(self.role) || self.role == 'cluster' || self.role == 'custom'`,
      fieldPath: '.role',
      message:
        'the wrapper probes the writer through the cluster endpoint (it connects to instances itself, past any reader endpoint or proxy): use role cluster or custom',
      check: (self) =>
        !isWrapper(self) || self.role === undefined || self.role === 'cluster' || self.role === 'custom',
    },
    {
      cel: `!(${wrapper}) || (has(self.connectionMode) && self.connectionMode == 'pooled')`,
      fieldPath: '.connectionMode',
      message:
        'the wrapper keeps its connections across a failover (that is what it is for): set connectionMode: pooled',
      check: (self) => !isWrapper(self) || self.connectionMode === 'pooled',
    },
    {
      cel: `!(${wrapper}) || !has(self.credentials.iam)`,
      fieldPath: '.credentials.iam',
      message:
        'IAM tokens are signed for one host name, and the wrapper connects to instance names after a failover: use a password Secret with the wrapper stack',
      check: (self) => !isWrapper(self) || self.credentials?.iam === undefined,
    },
    {
      cel: `!(${wrapper}) || !has(self.interval) || !${celIsDuration('self.interval')} || duration(self.interval) >= duration('100ms')`,
      fieldPath: '.interval',
      message:
        "the wrapper stack probes every 100ms or slower: each attempt runs through the wrapper's plugins, and the attempts a failover holds wait in its pool",
      check: (self) =>
        !isWrapper(self) ||
        !isDuration(self.interval ?? '100ms') ||
        parseDurationMs(self.interval ?? '100ms') >= 100,
    },
    {
      cel: "!has(self.credentials.iam) || !has(self.tls) || !has(self.tls.mode) || self.tls.mode != 'disable'",
      fieldPath: '.tls.mode',
      message:
        'IAM database authentication sends its token as a clear-text password: it needs TLS (tls.mode require or verify-full)',
      check: (self) => self.credentials?.iam === undefined || self.tls?.mode !== 'disable',
    },
    {
      cel: "!has(self.probes) || !('topology' in self.probes) || (has(self.dialect) && (self.dialect == 'aurora-postgresql' || self.dialect == 'aurora-mysql'))",
      fieldPath: '.probes',
      message:
        "the topology probe reads an Aurora cluster's instances (aurora_replica_status(), information_schema.replica_host_status): dialect aurora-postgresql or aurora-mysql",
      check: (self) =>
        !(self.probes ?? []).includes('topology') ||
        self.dialect === 'aurora-postgresql' ||
        self.dialect === 'aurora-mysql',
    },
    {
      cel: "!has(self.probes) || !('topology' in self.probes) || (has(self.topology) && has(self.topology.instanceHostPattern)) || self.host.matches('^[^.]+[.](cluster-custom-|cluster-ro-|cluster-|proxy-)[A-Za-z0-9]+[.][A-Za-z0-9-]+')",
      fieldPath: '.topology.instanceHostPattern',
      message:
        'the topology probe builds instance names from an RDS endpoint name (name.cluster-abc123.region.rds.amazonaws.com); for any other host set topology.instanceHostPattern, e.g. ?.abc123.us-east-1.rds.amazonaws.com',
      check: (self) =>
        !(self.probes ?? []).includes('topology') ||
        self.topology?.instanceHostPattern !== undefined ||
        /^[^.]+[.](cluster-custom-|cluster-ro-|cluster-|proxy-)[A-Za-z0-9]+[.][A-Za-z0-9-]+/.test(
          self.host ?? '',
        ),
    },
    {
      cel: "!has(self.role) || !has(self.probes) || self.role != 'reader' || !('write' in self.probes)",
      fieldPath: '.probes',
      message: 'a reader endpoint cannot take writes: list probes without write, e.g. [read, dns]',
      check: (self) => self.role !== 'reader' || !(self.probes ?? ['write', 'read']).includes('write'),
    },
    {
      cel: `!has(self.slowThreshold) || !has(self.queryTimeout) || !${celIsDuration('self.slowThreshold')} || !${celIsDuration('self.queryTimeout')} || duration(self.slowThreshold) < duration(self.queryTimeout)`,
      fieldPath: '.slowThreshold',
      message: 'slowThreshold must be shorter than queryTimeout, or no attempt could be slow',
      check: (self) => {
        const slow = self.slowThreshold ?? '500ms';
        const query = self.queryTimeout ?? '1s';
        return !isDuration(slow) || !isDuration(query) || parseDurationMs(slow) < parseDurationMs(query);
      },
    },
  ]);
}

function endpointsSchema<R extends boolean>(resolved: R) {
  const schema = Type.Array(endpointSchema(resolved), {
    minItems: 1,
    maxItems: MAX_ENDPOINTS,
    description: 'The endpoints to probe, all on one time axis.',
  });
  return withRules<typeof schema, { name?: string }[]>(schema, [
    {
      cel: 'self.all(e, self.filter(f, f.name == e.name).size() == 1)',
      message: 'endpoint names must be unique',
      check: (self) => new Set(self.map((endpoint) => endpoint.name)).size === self.length,
    },
  ]);
}

function baselineSchema<R extends boolean>(resolved: R) {
  return Type.Object(
    {
      duration: defaulted(
        resolved,
        durationString({
          default: '10s',
          min: '1s',
          max: '1h',
          description:
            "How long to probe before the trigger. It starts 2 s after the last prober started (the probers' warm-up, recorded but not judged).",
        }),
      ),
      maxErrorRatio: defaulted(
        resolved,
        Type.Number({
          default: 0,
          minimum: 0,
          maximum: 1,
          description:
            'Largest share of failed or slow attempts per endpoint in the baseline (warm-up excluded) that still counts as healthy; above it the run fails without a failover.',
        }),
      ),
    },
    {
      additionalProperties: false,
      default: {},
      description: 'The steady state that must hold before the failover is triggered.',
    },
  );
}

function observeSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      recoveredFor: defaulted(
        resolved,
        durationString({
          default: '10s',
          min: '1s',
          max: '1h',
          description: 'Observation ends once every endpoint has had no error for this long.',
        }),
      ),
      maxDuration: defaulted(
        resolved,
        durationString({
          default: '5m',
          min: '1s',
          max: '24h',
          description: 'Observation ends after this long in any case.',
        }),
      ),
    },
    { additionalProperties: false, default: {}, description: 'Watching the recovery after the trigger.' },
  );
  return withRules<typeof schema, { recoveredFor?: string; maxDuration?: string }>(schema, [
    {
      cel: `!has(self.recoveredFor) || !has(self.maxDuration) || !${celIsDuration('self.recoveredFor')} || !${celIsDuration('self.maxDuration')} || duration(self.recoveredFor) < duration(self.maxDuration)`,
      fieldPath: '.recoveredFor',
      message: 'recoveredFor must be shorter than maxDuration',
      check: (self) => {
        const recovered = self.recoveredFor ?? '10s';
        const max = self.maxDuration ?? '5m';
        return (
          !isDuration(recovered) || !isDuration(max) || parseDurationMs(recovered) < parseDurationMs(max)
        );
      },
    },
  ]);
}

function auditSchema<R extends boolean>(resolved: R) {
  return Type.Object(
    {
      lostWrites: defaulted(
        resolved,
        Type.Boolean({
          default: true,
          description:
            'After recovery, read the probe rows back from the new writer to count lost and ambiguous writes.',
        }),
      ),
    },
    { additionalProperties: false, default: {}, description: 'Checks after recovery.' },
  );
}

interface SpecRuleView {
  trigger?: { type?: string; action?: string; instanceIdentifier?: string };
  target?: { kind?: string };
  probers?: { sharing?: string };
  endpoints?: {
    credentials?: { iam?: { serviceAccountName?: string } };
    client?: { stack?: string };
  }[];
}

/** The IAM ServiceAccounts the endpoints sign with (none named: `default`); a shared pod runs as one. */
function iamServiceAccounts(self: SpecRuleView): Set<string> {
  const names = new Set<string>();
  for (const e of self.endpoints ?? []) {
    const iam = e.credentials?.iam;
    if (iam) names.add(iam.serviceAccountName ?? 'default');
  }
  return names;
}

const CEL_IAM_ACCOUNT = (e: string) =>
  `(has(${e}.credentials.iam.serviceAccountName) ? ${e}.credentials.iam.serviceAccountName : 'default')`;
const CEL_SHARING_ZONE = "has(self.probers) && has(self.probers.sharing) && self.probers.sharing == 'Zone'";

function buildSpecSchema<R extends boolean>(resolved: R) {
  const schema = Type.Object(
    {
      target: Type.Optional(targetSchema(resolved)),
      trigger: triggerSchema(resolved),
      endpoints: endpointsSchema(resolved),
      baseline: defaulted(resolved, baselineSchema(resolved)),
      observe: defaulted(resolved, observeSchema(resolved)),
      audit: defaulted(resolved, auditSchema(resolved)),
      slo: Type.Optional(
        sloSchema("Objectives for every endpoint; an endpoint's own slo overrides them field by field."),
      ),
      probers: Type.Optional(placementSchema(false)),
      dryRun: Type.Optional(
        Type.Boolean({
          description:
            'Rehearsal: validation, credentials, TLS, preflight and baseline, then stop with verdict DryRun; the failover is never called.',
        }),
      ),
    },
    {
      additionalProperties: false,
      description: 'What to fail over, how, which endpoints to probe, and what counts as a pass.',
    },
  );
  return withRules<typeof schema, SpecRuleView>(schema, [
    {
      cel: "self.trigger.type != 'aws-rds' || has(self.target)",
      fieldPath: '.target',
      message: 'target is required when trigger.type is aws-rds',
      check: (self) => self.trigger?.type !== 'aws-rds' || self.target !== undefined,
    },
    {
      cel: "self.trigger.type != 'aws-rds' || !has(self.target) || (has(self.trigger.action) && self.trigger.action in ['reboot-db-instance', 'modify-db-instance-class', 'switchover-blue-green-deployment']) || ((!has(self.trigger.action) || self.trigger.action in ['failover-db-cluster', 'switchover-global-cluster', 'failover-global-cluster']) == (!has(self.target.kind) || self.target.kind != 'rds-instance'))",
      fieldPath: '.trigger.action',
      message:
        'trigger.action must match target.kind: failover-db-cluster for aurora-cluster and multi-az-db-cluster, reboot-db-instance-force-failover for rds-instance (reboot-db-instance, modify-db-instance-class and switchover-blue-green-deployment fit all; the Global Database actions need aurora-cluster)',
      check: (self) =>
        self.trigger?.type !== 'aws-rds' ||
        self.target === undefined ||
        isInstanceRestartAction(self.trigger.action) ||
        self.trigger.action === 'switchover-blue-green-deployment' ||
        ((self.trigger.action ?? 'failover-db-cluster') === 'failover-db-cluster' ||
          isGlobalAction(self.trigger.action)) === isClusterKind(self.target.kind),
    },
    {
      cel: "self.trigger.type != 'aws-rds' || !has(self.target) || !has(self.target.kind) || self.target.kind != 'multi-az-db-cluster' || !has(self.trigger.action) || self.trigger.action == 'failover-db-cluster'",
      fieldPath: '.trigger.action',
      message:
        'a multi-az-db-cluster target takes trigger.action failover-db-cluster: RDS reboots and resizes the members of a Multi-AZ DB cluster through the cluster (RebootDBCluster, ModifyDBCluster), which failwatch does not call, and failwatch switches over Blue/Green deployments of Aurora clusters and RDS instances only',
      check: (self) =>
        self.trigger?.type !== 'aws-rds' ||
        self.target?.kind !== 'multi-az-db-cluster' ||
        (self.trigger.action ?? 'failover-db-cluster') === 'failover-db-cluster',
    },
    {
      cel: "!has(self.trigger.instanceIdentifier) || !has(self.target) || !has(self.target.kind) || self.target.kind != 'rds-instance'",
      fieldPath: '.trigger.instanceIdentifier',
      message:
        'trigger.instanceIdentifier picks a member of an aurora-cluster target; an rds-instance target names its instance in target.instanceIdentifier',
      check: (self) => self.trigger?.instanceIdentifier === undefined || self.target?.kind !== 'rds-instance',
    },
    {
      // Nested all() without filter()/map(): those copy whole endpoints, over the cost budget.
      cel: `!(${CEL_SHARING_ZONE}) || self.endpoints.all(e, !has(e.credentials.iam) || self.endpoints.all(f, !has(f.credentials.iam) || ${CEL_IAM_ACCOUNT('f')} == ${CEL_IAM_ACCOUNT('e')}))`,
      fieldPath: '.probers.sharing',
      message:
        'with sharing Zone the endpoints share prober pods, and a pod runs as one ServiceAccount: give every credentials.iam the same serviceAccountName (none: default), or set sharing Endpoint',
      check: (self) => self.probers?.sharing !== 'Zone' || iamServiceAccounts(self).size <= 1,
    },
    {
      cel: `!(${CEL_SHARING_ZONE}) || self.endpoints.all(e, !has(e.client) || !has(e.client.stack) || e.client.stack != '${WRAPPER_STACK}')`,
      fieldPath: '.probers.sharing',
      message:
        'sharing Zone cannot run the AWS Advanced NodeJS Wrapper: it keeps topology and host availability per process, so endpoints in one pod would change what each other measures; set sharing Endpoint',
      check: (self) =>
        self.probers?.sharing !== 'Zone' ||
        !(self.endpoints ?? []).some((e) => e.client?.stack === WRAPPER_STACK),
    },
  ]);
}

/** What a user writes (defaults not applied). */
export const FailoverExperimentSpecInputSchema = buildSpecSchema(false);
/** The same schema, typed as it is after defaults were applied. */
export const FailoverExperimentSpecSchema = buildSpecSchema(true);

export type FailoverExperimentSpecInput = Static<typeof FailoverExperimentSpecInputSchema>;
export type FailoverExperimentSpec = Static<typeof FailoverExperimentSpecSchema>;
export type EndpointSpec = FailoverExperimentSpec['endpoints'][number];
export type TargetSpec = NonNullable<FailoverExperimentSpec['target']>;
export type TriggerSpec = FailoverExperimentSpec['trigger'];
export type SloSpec = NonNullable<FailoverExperimentSpec['slo']>;
export type ProberPlacementSpec = NonNullable<FailoverExperimentSpec['probers']>;
export type Dialect = (typeof DIALECTS)[number];
export type EndpointRole = (typeof ENDPOINT_ROLES)[number];
export type ConnectionMode = (typeof CONNECTION_MODES)[number];
export type TlsMode = (typeof TLS_MODES)[number];
