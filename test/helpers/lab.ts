// A lab for end-to-end tests, through the CLI like a user's, on its own addresses.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EndpointResult, Results } from '../../src/analysis/results.ts';
import type { LabState } from '../../src/lab/control.ts';
import type { GroundTruthStep } from '../../src/lab/model.ts';
import { failwatch } from './cli.ts';

export interface TestLab {
  dir: string;
  base: string;
  dnsPort: number;
  apiPort: number;
  state(): LabState;
  down(): Promise<void>;
}

export async function startTestLab(opts: {
  base: string;
  dnsPort: number;
  apiPort: number;
  engines?: string;
  /** `failwatch lab up --cluster-kind` (default aurora). */
  clusterKind?: string;
  /** `failwatch lab up --blue-green`. */
  blueGreen?: boolean;
  /** `failwatch lab up --global`. */
  global?: boolean;
  /** `failwatch lab up --profile` (default fast). */
  profile?: 'fast' | 'default';
}): Promise<TestLab> {
  const parent = mkdtempSync(join(tmpdir(), 'fw-e2e-'));
  chmodSync(parent, 0o755);
  const dir = join(parent, 'lab');
  const up = await failwatch([
    'lab',
    'up',
    '--dir',
    dir,
    '--profile',
    opts.profile ?? 'fast',
    '--engines',
    opts.engines ?? 'postgresql',
    '--address-base',
    opts.base,
    '--dns-port',
    String(opts.dnsPort),
    '--api-port',
    String(opts.apiPort),
    ...(opts.clusterKind ? ['--cluster-kind', opts.clusterKind] : []),
    ...(opts.blueGreen ? ['--blue-green'] : []),
    ...(opts.global ? ['--global'] : []),
  ]);
  assert.equal(up.code, 0, up.stderr);
  return {
    dir,
    ...opts,
    state: () => JSON.parse(readFileSync(join(dir, 'lab.json'), 'utf8')) as LabState,
    down: async () => {
      const r = await failwatch(['lab', 'down', '--dir', dir]);
      assert.equal(r.code, 0, r.stderr);
    },
  };
}

/** A lab example manifest, rewritten for a test lab's addresses, ports and CA file. */
export function labManifest(
  lab: TestLab,
  edit: (text: string) => string = (t) => t,
  example = 'lab-aurora-postgresql.yaml',
): string {
  const text = readFileSync(new URL(`../../examples/${example}`, import.meta.url), 'utf8')
    .replaceAll('127.0.10.1:10080', `${lab.base}.1:${lab.apiPort}`)
    .replaceAll('127.0.0.1:10053', `127.0.0.1:${lab.dnsPort}`)
    .replaceAll('/tmp/failwatch-lab/', `${lab.dir}/`);
  return edit(text);
}

/** `failwatch run --quiet` of a manifest written to `dir`: its exit, output and results.json. */
export async function runManifest(dir: string, name: string, manifest: string, env: NodeJS.ProcessEnv) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, manifest);
  const output = join(dir, `${name}-results.json`);
  const r = await failwatch(['run', file, '--quiet', '--output', output], env);
  const doc = JSON.parse(readFileSync(output, 'utf8')) as Results & {
    run: { end: string; reason: string | null; message: string; triggered: boolean };
  };
  return { ...r, doc };
}

/** The endpoint `name` of a results document (asserted present). */
export function endpoint(results: Results, name: string): EndpointResult {
  const e = results.endpoints.find((x) => x.name === name);
  assert.ok(e, `results have endpoint ${name}`);
  return e;
}

/** The lab's ground truth of its failover (or operation) `n`: the time of a step, asserted present. */
export function groundTruthSteps(lab: TestLab, n: number) {
  const truth = lab.state().groundTruth.filter((s) => s.failover === n);
  return (step: GroundTruthStep['step']) => {
    const s = truth.find((x) => x.step === step);
    assert.ok(s, `ground truth has ${step}: ${JSON.stringify(truth)}`);
    return s.atMs;
  };
}
