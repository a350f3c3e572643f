import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { proberGroups } from '../../src/api/probe-lanes.ts';
import { validateExperimentSpec } from '../../src/api/validate-experiment.ts';
import { proberPod } from '../../src/controller/prober-pods.ts';
import {
  GENERATION_SEQS,
  proberLost,
  replaceLostProbers,
  replacementFor,
} from '../../src/controller/prober-replacement.ts';

const exp = { namespace: 'team', name: 'e2e', uid: 'u1', runId: 'r1' };

function endpointSpec() {
  const result = validateExperimentSpec({
    target: { clusterIdentifier: 'lab-pg' },
    trigger: { type: 'aws-rds' },
    endpoints: [
      {
        name: 'cluster',
        dialect: 'postgresql',
        host: 'db',
        database: 'app',
        interval: '100ms',
        credentials: { secretRef: { name: 'db' } },
      },
    ],
  });
  assert.ok(result.ok, JSON.stringify(result));
  return result.value.endpoints[0]!;
}

const withPhase = (pod: V1Pod, phase: string, deleting = false): V1Pod => ({
  ...pod,
  metadata: { ...pod.metadata, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
  status: { phase },
});

const TOKEN = { name: 'e2e-prober-token', key: 'token' };

describe('prober replacement', () => {
  const endpoint = endpointSpec();
  const first = proberPod(exp, endpoint, 'img', TOKEN);

  it('replaces only when every pod of the endpoint is lost or gone', () => {
    assert.equal(proberLost(withPhase(first, 'Running')), false);
    assert.equal(proberLost(withPhase(first, 'Running', true)), true, 'being deleted (drain, eviction)');
    assert.equal(proberLost(withPhase(first, 'Failed')), true);
    assert.equal(replacementFor(endpoint, [withPhase(first, 'Running')], 0, 5000), undefined);
  });

  it('gives each generation its own seq range past every seq used before', () => {
    const r1 = replacementFor(endpoint, [withPhase(first, 'Failed')], 0, 30_000)!;
    // 30 s + 60 s of headroom at 100 ms: 900 seqs into generation 1's range.
    assert.deepEqual(r1, { generation: 1, seqBase: GENERATION_SEQS + 900 });
    const pod = proberPod(exp, endpoint, 'img', TOKEN, r1);
    assert.equal(pod.metadata!.name, 'e2e-probe-cluster-r1');
    assert.equal(pod.metadata!.annotations!['failwatch.io/prober-generation'], '1');
    assert.deepEqual(
      pod.spec!.containers[0]!.env!.find((e) => e.name === 'FAILWATCH_SEQ_BASE'),
      { name: 'FAILWATCH_SEQ_BASE', value: String(GENERATION_SEQS + 900) },
    );
    const r2 = replacementFor(
      endpoint,
      [withPhase(first, 'Failed'), withPhase(pod, 'Running', true)],
      0,
      60_000,
    );
    assert.equal(r2!.generation, 2);
    assert.ok(r2!.seqBase >= 2 * GENERATION_SEQS);
    // Nothing left in the API (a controller restart lost track): generation 1 again, but its
    // seqs start past what any prober could reach by now.
    const again = replacementFor(endpoint, [], 0, 120_000)!;
    assert.deepEqual(again, { generation: 1, seqBase: GENERATION_SEQS + 1800 });
  });

  it('replaces a shared pod (sharing Zone) as a whole: every lane of it, seqs past the fastest lane', async () => {
    const spec = validateExperimentSpec({
      target: { clusterIdentifier: 'lab-pg' },
      trigger: { type: 'aws-rds' },
      probers: { sharing: 'Zone', zones: ['us-east-1a', 'us-east-1b'] },
      endpoints: [
        { ...endpoint, credentials: { secretRef: { name: 'db' } } },
        { ...endpoint, name: 'proxy', interval: '10ms', credentials: { secretRef: { name: 'db' } } },
      ],
    });
    assert.ok(spec.ok, JSON.stringify(spec));
    const groups = proberGroups(spec.value);
    const pods = groups.map((g) => withPhase(proberPod(exp, g, 'img', TOKEN), 'Running'));
    pods[0] = withPhase(pods[0]!, 'Running', true); // us-east-1a's pod is being drained
    const created: V1Pod[] = [];
    const events: string[] = [];
    const names = await replaceLostProbers(exp, groups, pods, 'img', TOKEN, Date.now() - 30_000, {
      createPod: async (pod) => {
        created.push(pod);
      },
      onReplaced: async (lanes, pod) => {
        events.push(`${lanes} -> ${pod.metadata!.name}`);
      },
    });
    assert.deepEqual(names, ['e2e-probe-shared-us-east-1a-r1']);
    assert.deepEqual(events, ['cluster@us-east-1a, proxy@us-east-1a -> e2e-probe-shared-us-east-1a-r1']);
    const pod = created[0]!;
    assert.equal(pod.metadata!.annotations!['failwatch.io/endpoints'], 'cluster,proxy');
    const env = Object.fromEntries(pod.spec!.containers[0]!.env!.map((e) => [e.name, e.value]));
    assert.equal(env.FAILWATCH_LANES, '2');
    // 30 s + 60 s of headroom at proxy's 10 ms: at least 9,000 seqs into generation 1's range.
    const seqBase = Number(env.FAILWATCH_SEQ_BASE);
    assert.ok(seqBase >= GENERATION_SEQS + 9000 && seqBase < GENERATION_SEQS + 9100, String(seqBase));
  });
});
