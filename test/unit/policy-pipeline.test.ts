/** The identities → publish → policy steps of one pass: a failed step stops the later ones until the next pass. Pure. */
import t from 'tap';
import { PolicyPipeline } from '../../src/agent/policy-pipeline.js';

t.test('steps run in a pass until one fails', async (tt) => {
  const p = new PolicyPipeline();
  p.begin();
  tt.equal(await p.step('identities', async () => 1), 1);
  p.handOver(new Map([['endpoints/n1/1', '{}']]));
  tt.same([...p.takeEndpoints()!.keys()], ['endpoints/n1/1'], 'publish hands its records over');
  tt.equal(p.takeEndpoints(), undefined, 'once');
  await tt.rejects(p.step('publish', async () => {
    throw new Error('store down');
  }), /store down/);
  tt.equal(await p.step('policy', async () => 3), undefined, 'after a failed step, the later ones do not run');
  p.begin();
  tt.equal(await p.step('identities', async () => 4), 4, 'the next pass runs them again');
  p.handOver(new Map());
  p.begin();
  tt.equal(p.takeEndpoints(), undefined, 'a new pass drops what the last one handed over');
});
