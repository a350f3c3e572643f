// The FailoverExperiment status: small and bounded (summaries and windows, never raw samples).
// The full results document (failwatch.io/results/v1) is kept elsewhere (resultsRef).
import Type, { type Static } from 'typebox';
import { ERROR_CLASSES } from '../analysis/error-class.ts';
import { INCONCLUSIVE_REASONS, VERDICT_RESULTS } from '../analysis/verdict.ts';
import { MAX_ENDPOINTS, PROBE_KIND_NAMES, TRIGGER_ACTIONS } from './experiment-spec.ts';
import { stringEnum } from './schema-builders.ts';

export const EXPERIMENT_PHASES = [
  'Pending',
  'Preflight',
  'Baseline',
  'Triggering',
  'Observing',
  'Analyzing',
  'Completed',
  'Failed',
  'Aborted',
] as const;
export type ExperimentPhase = (typeof EXPERIMENT_PHASES)[number];

export const STATUS_WINDOWS_LIMIT = 10;
export const STATUS_GAPS_LIMIT = 3;
export const STATUS_EVENTS_LIMIT = 20;
export const STATUS_REASONS_LIMIT = 20;
export const STATUS_CONDITIONS_LIMIT = 16;

/** Every class but ok: the status counts failed or slow attempts. */
const ERROR_CLASS_NAMES = ERROR_CLASSES.filter(
  (c): c is Exclude<(typeof ERROR_CLASSES)[number], 'ok'> => c !== 'ok',
);

/** What can show that a failover happened (the trigger protocol's evidence). */
export const TRIGGER_OBSERVED_BY = [
  'rds-writer',
  'rds-status',
  'rds-events',
  'probes-role-flip',
  'probes-restart',
] as const;

const time = (description: string) => Type.String({ format: 'date-time', maxLength: 64, description });
const seconds = (description: string) =>
  Type.Number({ description: `${description} Seconds relative to T0 (the failover API call).` });

/** metav1.Condition. */
export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      pattern:
        '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
      description: 'Condition type in CamelCase, e.g. Ready, Blocked, Triggered.',
    }),
    status: stringEnum(['True', 'False', 'Unknown'], { description: 'True, False or Unknown.' }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
      description: 'Machine-readable CamelCase reason.',
    }),
    message: Type.String({ maxLength: 32768, description: 'Human-readable details.' }),
    observedGeneration: Type.Optional(
      Type.Integer({ minimum: 0, description: 'metadata.generation the condition was set for.' }),
    ),
    lastTransitionTime: time('When the status last changed.'),
  },
  { description: 'A metav1.Condition.' },
);

const errorCountsSchema = Type.Object(
  Object.fromEntries(
    ERROR_CLASS_NAMES.map((name) => [
      name,
      Type.Optional(Type.Integer({ minimum: 0, description: `Attempts classed ${name}.` })),
    ]),
  ) as Record<
    (typeof ERROR_CLASS_NAMES)[number],
    ReturnType<typeof Type.Optional<ReturnType<typeof Type.Integer>>>
  >,
  { description: 'Failed or slow attempts per error class (all probe kinds).' },
);

const windowSchema = Type.Object(
  {
    kind: stringEnum(PROBE_KIND_NAMES, { description: 'Probe kind.' }),
    startSeconds: seconds('Window start: end of the last good attempt before the failures.'),
    endSeconds: Type.Optional(
      seconds('Window end: end of the first good attempt after them; absent while open.'),
    ),
    lowerBoundSeconds: Type.Number({
      minimum: 0,
      description: 'First bad start to last bad end, in seconds.',
    }),
    upperBoundSeconds: Type.Number({ minimum: 0, description: 'Window length in seconds.' }),
  },
  { description: 'One outage window.' },
);

const endpointSummarySchema = Type.Object(
  {
    name: Type.String({
      maxLength: 127,
      description:
        'The lane: the endpoint name, or <endpoint>@<zone> when spec.probers.zones probes it per zone.',
    }),
    endpoint: Type.Optional(
      Type.String({ maxLength: 63, description: 'Per-zone lanes: the endpoint name.' }),
    ),
    zone: Type.Optional(
      Type.String({ maxLength: 63, description: 'Per-zone lanes: the zone the prober ran in.' }),
    ),
    writeDowntimeSeconds: Type.Optional(
      Type.Number({
        minimum: 0,
        description: 'Write downtime (outage windows overlapping the observation), seconds.',
      }),
    ),
    writeLowerBoundSeconds: Type.Optional(
      Type.Number({ minimum: 0, description: 'Lower bound of the write downtime, seconds.' }),
    ),
    readDowntimeSeconds: Type.Optional(Type.Number({ minimum: 0, description: 'Read downtime, seconds.' })),
    readLowerBoundSeconds: Type.Optional(
      Type.Number({ minimum: 0, description: 'Lower bound of the read downtime, seconds.' }),
    ),
    recovered: Type.Boolean({ description: 'False when an outage was still open when observation ended.' }),
    errors: Type.Optional(errorCountsSchema),
    dnsFlipSeconds: Type.Optional(
      seconds('First DNS answer naming a different target than before the trigger.'),
    ),
    roleFlipSeconds: Type.Optional(
      seconds('First write acknowledged by a different server than before the trigger.'),
    ),
    lostWrites: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Acknowledged writes missing after recovery.' }),
    ),
    ambiguousWrites: Type.Optional(
      Type.Integer({ minimum: 0, description: 'Failed writes whose row exists after recovery.' }),
    ),
    serverSideGapSeconds: Type.Optional(
      Type.Number({
        minimum: 0,
        description: "Largest gap between consecutive committed rows' server timestamps.",
      }),
    ),
    phases: Type.Optional(
      Type.Object(
        {
          detectionSeconds: Type.Number({
            minimum: 0,
            description: 'From the outage start until the database reported no writer.',
          }),
          promotionSeconds: Type.Number({
            minimum: 0,
            description: 'While no instance reported itself the writer.',
          }),
          dnsSeconds: Type.Optional(
            Type.Number({
              minimum: 0,
              description:
                "From the new writer until the endpoint's DNS answer changed; absent when the endpoint did not wait for DNS.",
            }),
          ),
          recoverySeconds: Type.Number({
            minimum: 0,
            description: 'From the last of those until the endpoint recovered.',
          }),
          dnsWait: Type.Optional(
            stringEnum(['waited', 'not-waited', 'not-probed'], {
              description:
                'waited: recovered after its DNS answer changed; not-waited: before; not-probed: no dns probe (recovery includes any DNS wait).',
            }),
          ),
        },
        {
          description:
            'The outage split into failover phases by a topology probe (docs/results.md, "Failover phases").',
        },
      ),
    ),
    windows: Type.Optional(
      Type.Array(windowSchema, {
        maxItems: STATUS_WINDOWS_LIMIT,
        description: `The first ${STATUS_WINDOWS_LIMIT} outage windows.`,
      }),
    ),
    coverage: Type.Optional(
      Type.Object(
        {
          complete: Type.Boolean({
            description:
              'Every probe kind has attempts from baseline start to observation end, no gap, nothing dropped.',
          }),
          gaps: Type.Integer({ minimum: 0, description: 'Coverage gaps of all probe kinds.' }),
          droppedSamples: Type.Optional(
            Type.Integer({
              minimum: 0,
              description: 'Samples the prober could not store (its store was full).',
            }),
          ),
          firstGaps: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  kind: stringEnum(PROBE_KIND_NAMES, { description: 'Probe kind.' }),
                  startSeconds: seconds('Start of the last attempt before the gap.'),
                  endSeconds: seconds('Start of the first attempt after the gap (or observation end).'),
                },
                { description: 'A stretch without attempts: missing data, not downtime.' },
              ),
              {
                maxItems: STATUS_GAPS_LIMIT,
                description: `The first ${STATUS_GAPS_LIMIT} gaps, in time order.`,
              },
            ),
          ),
        },
        { description: 'Whether the samples cover the run (docs/results.md, coverage).' },
      ),
    ),
    verdict: Type.Optional(
      stringEnum(VERDICT_RESULTS, {
        description: 'This endpoint against its SLOs (Inconclusive: its data cannot show they held).',
      }),
    ),
  },
  { description: 'Measured results of one endpoint.' },
);

export const FailoverExperimentStatusSchema = Type.Object(
  {
    phase: Type.Optional(
      stringEnum(EXPERIMENT_PHASES, {
        description:
          'Where the run is: Pending, Preflight, Baseline, Triggering, Observing, Analyzing, Completed, Failed or Aborted.',
      }),
    ),
    observedGeneration: Type.Optional(
      Type.Integer({ minimum: 0, description: 'metadata.generation this status is for.' }),
    ),
    conditions: Type.Optional(
      Type.Array(ConditionSchema, {
        maxItems: STATUS_CONDITIONS_LIMIT,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        description: "Latest observations of the experiment's state.",
      }),
    ),
    target: Type.Optional(
      Type.String({
        maxLength: 128,
        description: 'The failover target (cluster or instance identifier), for display.',
      }),
    ),
    runId: Type.Optional(
      Type.String({ maxLength: 64, description: 'Identifier of the run (also in the probe table rows).' }),
    ),
    startTime: Type.Optional(time('When the run started (preflight).')),
    baselineStartTime: Type.Optional(time('When the baseline started (all prober pods probing).')),
    triggerTime: Type.Optional(time('T0: when the failover API was called.')),
    completionTime: Type.Optional(time('When the run ended.')),
    trigger: Type.Optional(
      Type.Object(
        {
          intentTime: Type.Optional(
            time('When the intent to trigger was recorded, before the call (at most once).'),
          ),
          calledTime: Type.Optional(time('When the call returned.')),
          outcome: Type.Optional(
            stringEnum(['Pending', 'Succeeded', 'Unknown', 'Failed', 'Skipped'], {
              description:
                'What the call did: Unknown when it may or may not have reached RDS (a timeout, a controller restart around it); the run then observes and never calls again.',
            }),
          ),
          message: Type.Optional(Type.String({ maxLength: 1024, description: 'RDS error or details.' })),
          action: Type.Optional(Type.String({ maxLength: 256, description: 'The call that was made.' })),
          operation: Type.Optional(
            stringEnum([...TRIGGER_ACTIONS, 'none'] as const, {
              description:
                'The operation this run calls (spec.trigger.action when the intent was recorded, none for an observe-only run): what the metrics name, even if the spec changes later.',
            }),
          ),
          writerBefore: Type.Optional(
            Type.String({
              maxLength: 128,
              description: 'Writer instance before the call, to detect the change.',
            }),
          ),
          observedTime: Type.Optional(
            time(
              'When the failover or operation was first seen (RDS status, writer or events, the role flip, or the probes seeing the same server go away and come back).',
            ),
          ),
          observedBy: Type.Optional(
            stringEnum(TRIGGER_OBSERVED_BY, {
              description:
                'What showed the failover first: rds-writer, rds-status (failing-over; for a reboot or class change the instance rebooting/modifying), rds-events, probes-role-flip or probes-restart (reboot, class change: the same server went away and came back).',
            }),
          ),
          observedEnd: Type.Optional(
            Type.Object(
              {
                reason: stringEnum(['SwitchoverRolledBack', 'OperationNotCompleted'], {
                  description: 'Why the run is Inconclusive although the operation was seen.',
                }),
                message: Type.String({ maxLength: 1024, description: 'What RDS showed, for people.' }),
              },
              {
                description:
                  'A Blue/Green or Global Database operation seen to start but rolled back, or never seen to complete: recorded when observing ends, it makes the verdict Inconclusive.',
              },
            ),
          ),
        },
        { description: 'The trigger record that makes it fire at most once.' },
      ),
    ),
    events: Type.Optional(
      Type.Array(
        Type.Object(
          {
            seconds: seconds('When the event happened.'),
            time: time('When the event happened.'),
            source: Type.Optional(Type.String({ maxLength: 255, description: 'RDS SourceIdentifier.' })),
            message: Type.String({ maxLength: 1024, description: 'RDS event message.' }),
          },
          { description: 'An RDS event of the failover.' },
        ),
        { maxItems: STATUS_EVENTS_LIMIT, description: 'RDS events around the failover (DescribeEvents).' },
      ),
    ),
    verdict: Type.Optional(
      stringEnum([...VERDICT_RESULTS, 'DryRun'], {
        description:
          'Pass when every endpoint met its SLOs and recovered on data covering the run; Fail when a measured SLO was violated; Inconclusive when nothing measured failed but the data cannot show the SLOs held (never a pass); DryRun when spec.dryRun stopped a healthy run before the trigger.',
      }),
    ),
    verdictReasons: Type.Optional(
      Type.Array(
        Type.String({ maxLength: 1024, description: 'A failed objective or an Inconclusive finding.' }),
        {
          maxItems: STATUS_REASONS_LIMIT,
          description: 'Why the verdict is Fail or Inconclusive.',
        },
      ),
    ),
    inconclusive: Type.Optional(
      Type.Array(
        Type.Object(
          {
            reason: stringEnum(INCONCLUSIVE_REASONS, {
              description:
                'CoverageGap, FailoverNotObserved, OperationNotObserved, TriggerOutcomeUnknown, SwitchoverRolledBack or OperationNotCompleted.',
            }),
            endpoint: Type.Optional(
              Type.String({
                maxLength: 253,
                description: 'The endpoint concerned; absent for the whole run.',
              }),
            ),
            message: Type.String({ maxLength: 1024, description: 'What is missing, for people.' }),
          },
          { description: 'One reason the measurement cannot decide the verdict.' },
        ),
        { maxItems: STATUS_REASONS_LIMIT, description: 'Why the data cannot decide (see docs/results.md).' },
      ),
    ),
    worstDowntimeSeconds: Type.Optional(
      Type.Number({ minimum: 0, description: 'Largest write or read downtime of any endpoint, seconds.' }),
    ),
    worstDowntime: Type.Optional(
      Type.String({
        maxLength: 32,
        description: 'worstDowntimeSeconds with its unit, for kubectl get (e.g. 11.1s).',
      }),
    ),
    reason: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          'Why the run waits (Pending: the Blocked reason) or why it ended without a verdict (Failed: the failure reason); see docs/troubleshooting.md.',
      }),
    ),
    endpoints: Type.Optional(
      Type.Array(endpointSummarySchema, { maxItems: MAX_ENDPOINTS, description: 'Per-endpoint results.' }),
    ),
    resultsRef: Type.Optional(
      Type.Object(
        {
          configMapName: Type.String({ maxLength: 253, description: 'ConfigMap holding results.json.' }),
          reportSha256: Type.Optional(
            Type.String({
              pattern: '^[a-f0-9]{64}$',
              description:
                'SHA-256 of the report HTML the controller stored; the report pages serve the stored HTML only when it still matches.',
            }),
          ),
        },
        { description: 'Where the full results document is.' },
      ),
    ),
  },
  { description: 'Observed state of the experiment; bounded in size.' },
);

export type FailoverExperimentStatus = Static<typeof FailoverExperimentStatusSchema>;
export type ExperimentCondition = Static<typeof ConditionSchema>;
export type EndpointStatusSummary = NonNullable<FailoverExperimentStatus['endpoints']>[number];
