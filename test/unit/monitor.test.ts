/** The monitor's query parsing, its type filter, and the one-line event format. Pure. */
import t from 'tap';
import { monitorQuery, wanted } from '../../src/agent/monitor.js';
import { formatEvent } from '../../src/cli/commands/monitor.js';
import type { NamedEvent } from '../../src/inspect/events.js';

t.test('query: types and pod', async (tt) => {
  tt.same([...monitorQuery(new URLSearchParams('')).types].sort(), ['drop', 'policy-verdict', 'trace'], 'no type: all of them');
  tt.same([...monitorQuery(new URLSearchParams('type=drop,trace')).types], ['drop', 'trace']);
  tt.same([...monitorQuery(new URLSearchParams('type=drop&type=policy-verdict')).types], ['drop', 'policy-verdict'], 'repeated');
  tt.equal(monitorQuery(new URLSearchParams('pod=shop/web')).pod, 'shop/web');
  tt.throws(() => monitorQuery(new URLSearchParams('type=drops')), /unknown event type 'drops' \(types: drop, policy-verdict, trace\)/);
  tt.throws(() => monitorQuery(new URLSearchParams('pod=web')), /pod 'web' is not NAMESPACE\/NAME/);
});

t.test('a policy drop is a policy verdict too; other drops are not', async (tt) => {
  const verdicts = new Set(['policy-verdict'] as const);
  tt.ok(wanted(verdicts, { type: 'drop', reason: 'drop_policy_ingress' }));
  tt.ok(wanted(verdicts, { type: 'policy-verdict', reason: '' }));
  tt.notOk(wanted(verdicts, { type: 'drop', reason: 'drop_spoofed_ip' }));
  tt.notOk(wanted(new Set(['drop'] as const), { type: 'trace', reason: 'forward_local' }));
});

t.test('one line per event', async (tt) => {
  const e: NamedEvent = {
    time: '2026-11-22T12:00:01.123Z', node: 'n1', type: 'drop', direction: 'ingress', reason: 'drop_policy_ingress', protocol: 'TCP',
    src: { ip: '10.244.1.2', port: 40000, pod: 'shop/other', identity: 300 }, dst: { ip: '10.244.1.3', port: 80, pod: 'shop/web' },
    policy: 'shop/web', device: 'sl1234', len: 74,
  };
  tt.equal(formatEvent(e), '12:00:01.123 n1 DROP drop_policy_ingress ingress TCP 10.244.1.2:40000 (shop/other) -> 10.244.1.3:80 (shop/web) policy shop/web on sl1234 len 74');
  tt.equal(formatEvent({ ...e, type: 'policy-verdict', reason: undefined, src: { ip: '192.0.2.1', port: 5, identity: 2, labels: 'reserved:world' } }),
    '12:00:01.123 n1 ALLOWED by policy ingress TCP 192.0.2.1:5 (reserved:world) -> 10.244.1.3:80 (shop/web) policy shop/web on sl1234 len 74');
  tt.equal(formatEvent({ time: e.time, node: 'n1', type: 'lost', rateLimited: 7, ringFull: 0, agentBacklog: 2 }),
    '12:00:01.123 n1 LOST 7 over the rate limit, 2 to the agent\'s backlog');
});
