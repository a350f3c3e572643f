// FailoverSchedule (failwatch.io/v1alpha1): FailoverExperiments from a template on a cron
// schedule, like a CronJob creates Jobs, with a database's caution (no overlap, no backfill).
// Defined once here: TS types and the CRD's structural schema (openapi-schema.ts). What CEL
// cannot check (cron field ranges, IANA zone names) the controller reports as a condition.
import Type, { type Static } from 'typebox';
import { CRON_SHORTCUTS } from '../schedule/cron.ts';
import { WEEKDAYS } from '../schedule/windows.ts';
import { FailoverExperimentSpecInputSchema } from './experiment-spec.ts';
import { ConditionSchema, STATUS_CONDITIONS_LIMIT } from './experiment-status.ts';
import { namespacedCrd, toStructuralSchema } from './openapi-schema.ts';
import { stringEnum, withRules } from './schema-builders.ts';

export const SCHEDULE_KIND = 'FailoverSchedule';
export const SCHEDULE_PLURAL = 'failoverschedules';
/** Children are `<schedule>-<unix minutes>` and experiment names end up in pod names. */
export const SCHEDULE_NAME_MAX_LENGTH = 40;
export const STATUS_RUNS_LIMIT = 20;

const CRON_FIELD = '[0-9A-Za-z*?,/-]+';
/** Five fields of cron characters, or a shortcut; ranges are checked by the controller. */
export const CRON_PATTERN = `^((${Object.keys(CRON_SHORTCUTS).join('|')})|${CRON_FIELD}( +${CRON_FIELD}){4})$`;
export const HHMM_PATTERN = '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$';
/** IANA-shaped: `UTC`, `Asia/Tokyo`, `America/Argentina/Buenos_Aires`, `Etc/GMT+9`. */
export const TIME_ZONE_PATTERN = '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$';

const windowObject = Type.Object(
  {
    days: Type.Array(stringEnum(WEEKDAYS, { description: 'A day of the week in the time zone.' }), {
      minItems: 1,
      maxItems: 7,
      uniqueItems: true,
      description: 'Days of the week (Mon, Tue, ...) in the time zone.',
    }),
    start: Type.String({
      pattern: HHMM_PATTERN,
      maxLength: 5,
      description: 'Start of the window, HH:MM, inclusive.',
    }),
    end: Type.String({
      pattern: HHMM_PATTERN,
      description: 'End of the window, HH:MM (up to 24:00), exclusive.',
    }),
  },
  {
    additionalProperties: false,
    description: 'Days and hours in the time zone when runs may start.',
  },
);

const windowSchema = withRules<typeof windowObject, { start?: string; end?: string }>(windowObject, [
  {
    // HH:MM is fixed-width, so string order is time order (and the cost stays tiny).
    cel: 'self.start < self.end',
    fieldPath: '.end',
    message: 'the window is empty: end must be after start (split an overnight window in two)',
    check: (w) => !w.start || !w.end || w.start < w.end,
  },
]);

/** A map of strings (structural: `additionalProperties`, not `patternProperties`). */
const stringMap = (description: string) =>
  Type.Unsafe<Record<string, string>>({
    type: 'object',
    additionalProperties: { type: 'string' },
    description,
  });

function specSchema() {
  return Type.Object(
    {
      schedule: Type.String({
        maxLength: 128,
        pattern: CRON_PATTERN,
        description:
          'When to run, as cron (minute hour day-of-month month day-of-week) or @hourly, @daily, @weekly, @monthly, @yearly, evaluated in timeZone.',
      }),
      timeZone: Type.String({
        default: 'UTC',
        maxLength: 64,
        pattern: TIME_ZONE_PATTERN,
        description: 'IANA time zone the schedule and windows are in, e.g. Asia/Tokyo.',
      }),
      suspend: Type.Boolean({ default: false, description: 'True stops new runs; active runs go on.' }),
      startingDeadlineSeconds: Type.Integer({
        default: 600,
        minimum: 10,
        maximum: 86_400,
        description:
          'A tick missed (controller down) still runs if at most this late; otherwise it is skipped with a MissedSchedule Event. Missed ticks are never backfilled: at most the latest runs.',
      }),
      successfulRunsHistoryLimit: Type.Integer({
        default: 3,
        minimum: 0,
        maximum: 100,
        description: 'Finished runs with verdict Pass to keep; older ones are deleted.',
      }),
      failedRunsHistoryLimit: Type.Integer({
        default: 3,
        minimum: 0,
        maximum: 100,
        description: 'Finished runs that failed (verdict Fail, Failed, Aborted) to keep.',
      }),
      windows: Type.Optional(
        Type.Array(windowSchema, {
          maxItems: 16,
          description: 'When set, a tick runs only inside one of these windows (in timeZone).',
        }),
      ),
      regressionMarginPercent: Type.Number({
        default: 20,
        minimum: 0,
        maximum: 1000,
        description:
          "A regression is flagged when the latest run's worst downtime exceeds the median of the earlier runs in history by more than this percentage.",
      }),
      experimentTemplate: Type.Object(
        {
          metadata: Type.Optional(
            Type.Object(
              {
                labels: Type.Optional(stringMap('Labels of each run.')),
                annotations: Type.Optional(stringMap('Annotations of each run.')),
              },
              { description: 'Labels and annotations copied to each run.' },
            ),
          ),
          spec: FailoverExperimentSpecInputSchema,
        },
        { description: 'The FailoverExperiment each tick creates.' },
      ),
    },
    { additionalProperties: false, description: 'When to run which FailoverExperiment, and what to keep.' },
  );
}

export const FailoverScheduleSpecSchema = specSchema();
export type FailoverScheduleSpec = Static<typeof FailoverScheduleSpecSchema>;

const time = (description: string) => Type.String({ format: 'date-time', maxLength: 64, description });

export const FailoverScheduleStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: 'metadata.generation seen.' })),
    lastScheduleTime: Type.Optional(time('The tick the latest run was created for.')),
    lastSuccessfulTime: Type.Optional(time('When the latest run with verdict Pass finished.')),
    lastHandledTime: Type.Optional(
      time('The latest tick dealt with (run, skipped because a run was active, or missed).'),
    ),
    nextScheduleTime: Type.Optional(time('The next tick inside the windows (absent while suspended).')),
    nextRunIn: Type.Optional(
      Type.String({
        maxLength: 32,
        description:
          'Time to nextScheduleTime when the controller last looked (at least once a minute), e.g. in 6d23h: the NEXT RUN column.',
      }),
    ),
    lastVerdict: Type.Optional(
      Type.String({ maxLength: 32, description: 'Verdict of the latest finished run.' }),
    ),
    active: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ maxLength: 253, description: 'FailoverExperiment name.' }),
            uid: Type.Optional(Type.String({ maxLength: 64, description: 'Its uid.' })),
          },
          { description: 'A run that has not finished.' },
        ),
        { maxItems: STATUS_RUNS_LIMIT, description: 'Runs not finished yet.' },
      ),
    ),
    runs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ maxLength: 253, description: 'FailoverExperiment name.' }),
            scheduledTime: time('The tick it ran for.'),
            completionTime: Type.Optional(time('When it finished.')),
            verdict: Type.Optional(
              Type.String({
                maxLength: 32,
                description: 'Pass, Fail, DryRun, or Failed/Aborted without results.',
              }),
            ),
            worstDowntimeSeconds: Type.Optional(
              Type.Number({ minimum: 0, description: 'Largest downtime of any endpoint, seconds.' }),
            ),
          },
          { description: 'A run in history.' },
        ),
        { maxItems: STATUS_RUNS_LIMIT, description: 'Finished runs still in history, oldest first.' },
      ),
    ),
    regression: Type.Optional(
      Type.Object(
        {
          detected: Type.Boolean({
            description: 'The latest run is worse than the median by more than the margin.',
          }),
          latestSeconds: Type.Optional(Type.Number({ description: "Latest run's worst downtime." })),
          medianSeconds: Type.Optional(
            Type.Number({ description: 'Median worst downtime of the earlier runs.' }),
          ),
          marginPercent: Type.Number({ description: 'The margin used.' }),
          comparedRuns: Type.Integer({
            minimum: 0,
            description: 'How many earlier runs the median is over.',
          }),
        },
        { description: 'Downtime regression against history.' },
      ),
    ),
    conditions: Type.Optional(
      Type.Array(ConditionSchema, {
        maxItems: STATUS_CONDITIONS_LIMIT,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        description: 'Ready (the schedule is valid and scheduling), Regression.',
      }),
    ),
  },
  { description: 'Observed state of the schedule.' },
);

export type FailoverScheduleStatus = Static<typeof FailoverScheduleStatusSchema>;
export type ScheduleCondition = Static<typeof ConditionSchema>;

/** The whole CustomResourceDefinition object for FailoverSchedule. */
export function failoverScheduleCrd(): Record<string, unknown> {
  const openAPIV3Schema = toStructuralSchema({
    type: 'object',
    description:
      'A FailoverSchedule creates FailoverExperiments from a template on a cron schedule: never two at once, no backfill, bounded history.',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object: failwatch.io/v1alpha1.' },
      kind: { type: 'string', description: 'Kind of this object: FailoverSchedule.' },
      metadata: { type: 'object' },
      spec: FailoverScheduleSpecSchema,
      status: FailoverScheduleStatusSchema,
    },
    'x-kubernetes-validations': [
      {
        rule: `self.metadata.name.size() <= ${SCHEDULE_NAME_MAX_LENGTH}`,
        message: `name must be at most ${SCHEDULE_NAME_MAX_LENGTH} characters (runs are named <schedule>-<unix minutes>)`,
      },
    ],
  });
  return namespacedCrd(
    { kind: SCHEDULE_KIND, plural: SCHEDULE_PLURAL, singular: 'failoverschedule', shortNames: ['fxs'] },
    [
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
      { name: 'Suspend', type: 'boolean', jsonPath: '.spec.suspend' },
      { name: 'Last run', type: 'date', jsonPath: '.status.lastScheduleTime' },
      { name: 'Last verdict', type: 'string', jsonPath: '.status.lastVerdict' },
      // Not a `date` column: kubectl prints a future date as <invalid>.
      { name: 'Next run', type: 'string', jsonPath: '.status.nextRunIn' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    openAPIV3Schema,
  );
}
