/**
 * The agent's API socket is mode 0600 and owned by the agent's user (root, who runs it),
 * and the metrics endpoint listens on loopback unless configured otherwise
 * (docs/agent.md, Security).
 */
import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ApiServer } from '../../src/agent/server.js';
import { Registry, serveMetrics } from '../../src/agent/metrics.js';
import { DEFAULTS, resolveConfig } from '../../src/config/config.js';
import { tempDir } from '../helpers/env.js';

t.test('the API socket: 0600, the agent user\'s, whatever the umask', async (t) => {
  const dir = tempDir(t, 'slt-sock');
  const umask = process.umask(0);
  t.teardown(() => process.umask(umask));
  const server = new ApiServer([{ method: 'GET', path: '/v1/status', handler: async () => ({ ok: true }) }]);
  const path = join(dir, 'agent.sock');
  await server.listen(path);
  t.teardown(() => server.close());
  const st = statSync(path);
  t.ok(st.isSocket(), 'a unix socket');
  t.equal((st.mode & 0o777).toString(8), '600', 'mode 0600 (under umask 0, which would make it 0777)');
  t.equal(st.uid, process.getuid!(), "owned by the agent's user");
  t.equal(process.umask(), 0, 'the umask is restored');
});

t.test('metrics: loopback by default', async (t) => {
  t.equal(DEFAULTS.metricsAddress, '127.0.0.1:9962');
  t.equal(resolveConfig({}, {}).metricsAddress, '127.0.0.1:9962', 'the default config');
  const m = await serveMetrics(new Registry(), '127.0.0.1:0');
  t.teardown(() => m.close());
  t.match(m.address, /^127\.0\.0\.1:\d+$/, 'bound to 127.0.0.1 only');
});
