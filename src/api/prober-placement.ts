// Where prober pods run (Kubernetes only): spec.probers and each endpoint's probers override.
// nodeSelector, affinity, tolerations, resources and priorityClassName go onto the prober pod
// as written; `zones` runs one prober per endpoint in each listed zone
// (topology.kubernetes.io/zone), each one its own lane (probe-lanes.ts).
import Type from 'typebox';
import { DNS_SUBDOMAIN_PATTERN, LABEL_VALUE_PATTERN, QUANTITY_PATTERN } from './kube-patterns.ts';
import { withRules } from './schema-builders.ts';

/** The well-known node label of a node's zone. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const MAX_ZONES = 8;
export const TOLERATION_OPERATORS = ['Exists', 'Equal'] as const;
export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
/** spec.probers.sharing: a prober pod per endpoint (and zone), or one per zone for all. */
export const PROBER_SHARING = ['Endpoint', 'Zone'] as const;

/**
 * The prober container's resources when neither spec.probers nor the endpoint sets them, from
 * `npm run bench -- --only prober-memory` (docs/accuracy.md, "Prober memory"): a prober probing
 * write + read every 10 ms and DNS every 100 ms holds about 120-150 MiB RSS over 2 h and uses
 * about 8 % of a core; the limit is twice the request (V8 is sized for it: prober-resources.ts).
 */
export const DEFAULT_PROBER_RESOURCES = {
  requests: { cpu: '100m', memory: '192Mi' },
  limits: { memory: '384Mi' },
} as const;

const labelMap = (description: string) =>
  Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: 63, description: 'A label value the node must have.' },
    maxProperties: 32,
    description,
  });

/** An object the API server checks when the pod is created (the Pod's own schema). */
const kubeObject = (description: string) =>
  Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    description,
  });

function quantities(description: string) {
  const quantity = (name: string) =>
    Type.Optional(
      Type.String({
        pattern: QUANTITY_PATTERN,
        maxLength: 32,
        description: `${name}, a Kubernetes quantity (e.g. 50m, 1, 64Mi, 1Gi).`,
      }),
    );
  return Type.Optional(
    Type.Object(
      { cpu: quantity('CPU'), memory: quantity('Memory'), 'ephemeral-storage': quantity('Local storage') },
      { additionalProperties: false, description },
    ),
  );
}

function tolerationSchema() {
  const schema = Type.Object(
    {
      key: Type.Optional(
        Type.String({ maxLength: 316, description: 'Taint key; empty with operator Exists: every taint.' }),
      ),
      operator: Type.Optional(
        Type.Enum(TOLERATION_OPERATORS, {
          type: 'string',
          description: 'Equal (key and value match) or Exists (any value). Default: Equal.',
        }),
      ),
      value: Type.Optional(
        Type.String({ maxLength: 63, description: 'Taint value to match with operator Equal.' }),
      ),
      effect: Type.Optional(
        Type.Enum(TAINT_EFFECTS, {
          type: 'string',
          description: 'Taint effect to match; empty: every effect.',
        }),
      ),
      tolerationSeconds: Type.Optional(
        Type.Integer({
          minimum: 0,
          description: 'effect NoExecute: how long the pod stays once the taint appears.',
        }),
      ),
    },
    { additionalProperties: false, description: 'A toleration, as in a Pod spec.' },
  );
  return withRules<typeof schema, { key?: string; operator?: string; value?: string; effect?: string }>(
    schema,
    [
      {
        cel: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        fieldPath: '.value',
        message: 'a toleration with operator Exists takes no value',
        check: (self) => self.operator !== 'Exists' || !self.value,
      },
      {
        cel: "has(self.key) && self.key != '' || (has(self.operator) && self.operator == 'Exists')",
        fieldPath: '.key',
        message: 'a toleration without key must have operator Exists (it then tolerates every taint)',
        check: (self) => !!self.key || self.operator === 'Exists',
      },
    ],
  );
}

/** The placement fields, the same in spec.probers and in an endpoint's override. */
function placementProperties() {
  return {
    nodeSelector: Type.Optional(
      labelMap(
        `Node labels the prober pods require (pod.spec.nodeSelector). With zones, ${ZONE_LABEL} is added per prober. Default: none.`,
      ),
    ),
    affinity: Type.Optional(
      kubeObject(
        'Pod affinity of the prober pods (pod.spec.affinity: nodeAffinity, podAffinity, podAntiAffinity), as in a Pod spec; the API server checks it when the pod is created. Default: none.',
      ),
    ),
    tolerations: Type.Optional(
      Type.Array(tolerationSchema(), {
        maxItems: 32,
        description: 'Tolerations of the prober pods (pod.spec.tolerations). Default: none.',
      }),
    ),
    resources: Type.Optional(
      Type.Object(
        {
          requests: quantities(
            `Requests of the prober container. Default: cpu ${DEFAULT_PROBER_RESOURCES.requests.cpu}, memory ${DEFAULT_PROBER_RESOURCES.requests.memory}.`,
          ),
          limits: quantities(
            `Limits of the prober container. Default: memory ${DEFAULT_PROBER_RESOURCES.limits.memory}, no CPU limit.`,
          ),
        },
        {
          additionalProperties: false,
          description:
            "Resources of the prober container; requests and limits each replace the default's as a whole.",
        },
      ),
    ),
    priorityClassName: Type.Optional(
      Type.String({
        maxLength: 253,
        pattern: DNS_SUBDOMAIN_PATTERN,
        description: 'PriorityClass of the prober pods. Default: none (the cluster default priority).',
      }),
    ),
    zones: Type.Optional(
      Type.Array(
        Type.String({
          minLength: 1,
          maxLength: 63,
          pattern: LABEL_VALUE_PATTERN,
          description: `A zone: a value of the node label ${ZONE_LABEL}, e.g. us-east-1a.`,
        }),
        {
          minItems: 1,
          maxItems: MAX_ZONES,
          uniqueItems: true,
          description: `Run one prober per endpoint in each of these zones (nodeSelector ${ZONE_LABEL}=<zone>, together with the rest of the placement); each is its own lane, named <endpoint>@<zone> in results. Default: one prober per endpoint, anywhere.`,
        },
      ),
    ),
  };
}

interface PlacementRuleView {
  zones?: string[];
  sharing?: string;
  maxEndpointsPerPod?: number;
  nodeSelector?: Record<string, string>;
}

/** spec.probers, or an endpoint's probers (`override`: its fields replace spec.probers' one by one). */
export function placementSchema(override: boolean) {
  const sharing = Type.Optional(
    Type.Enum(PROBER_SHARING, {
      type: 'string',
      description:
        "Endpoint (default): one prober pod per endpoint (per endpoint and zone with zones). Zone: one prober pod per zone (one in all without zones) probes every endpoint placed alike (the same placement after the endpoints' overrides), one Node.js process instead of one per endpoint; without resources set, its requests and limits grow with its endpoints. An endpoint's lane, results and metrics are the same either way.",
    }),
  );
  const maxEndpointsPerPod = Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 16,
      description:
        'sharing Zone: at most this many endpoints per prober pod; a zone with more gets several pods (<experiment>-probe-shared-<zone>, ...-shared-2-<zone>, ...). At 10 ms intervals keep it at 8 or less (docs/accuracy.md, "Prober footprint"). Default: all the zone\'s endpoints in one pod.',
    }),
  );
  const properties = { ...placementProperties(), sharing, maxEndpointsPerPod };
  // An endpoint cannot leave its zone's shared pod: sharing is spec.probers' alone.
  if (override) {
    delete (properties as Partial<typeof properties>).sharing;
    delete (properties as Partial<typeof properties>).maxEndpointsPerPod;
  }
  const schema = Type.Object(properties, {
    additionalProperties: false,
    description: override
      ? "Kubernetes: where this endpoint's prober pods run; each field set here replaces spec.probers' field of the same name."
      : 'Kubernetes: where the prober pods run and with which resources (failwatch run probes from where it runs and ignores this).',
  });
  return withRules<typeof schema, PlacementRuleView>(schema, [
    {
      cel: `!has(self.zones) || !has(self.nodeSelector) || !('${ZONE_LABEL}' in self.nodeSelector)`,
      fieldPath: '.nodeSelector',
      message: `zones sets nodeSelector ${ZONE_LABEL} per prober: leave it out of nodeSelector`,
      check: (self) => self.zones === undefined || self.nodeSelector?.[ZONE_LABEL] === undefined,
    },
    ...(override
      ? []
      : [
          {
            cel: "!has(self.maxEndpointsPerPod) || (has(self.sharing) && self.sharing == 'Zone')",
            fieldPath: '.maxEndpointsPerPod',
            message: 'maxEndpointsPerPod limits shared prober pods: set sharing Zone too',
            check: (self: PlacementRuleView) =>
              self.maxEndpointsPerPod === undefined || self.sharing === 'Zone',
          },
        ]),
  ]);
}
