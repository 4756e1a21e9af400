/** `lab exec`'s command line: in a node, `sluice` is this build with the node's config in force. */
import t from 'tap';
import { execCommand } from '../../src/lab/exec.js';
import { SLUICE_BIN } from '../helpers/env.js';

t.test('lab exec --node: sluice is this build, the node config in force; pods get neither', async (tt) => {
  const node = execCommand({ netns: '/run/netns/x-n1', config: '/l/n1/config.yaml' }, ['sluice', 'endpoint', 'list'], {});
  tt.same(node.argv, ['nsenter', '--net=/run/netns/x-n1', process.execPath, SLUICE_BIN, 'endpoint', 'list']);
  tt.same(node.env, { SLUICE_CONFIG: '/l/n1/config.yaml' });
  const other = execCommand({ netns: '/run/netns/x-n1', config: '/l/n1/config.yaml' }, ['ip', 'route'], {});
  tt.same(other.argv, ['nsenter', '--net=/run/netns/x-n1', 'ip', 'route'], 'other commands run as given');
  const pod = execCommand({ netns: '/run/netns/x-n1.d.a' }, ['sluice', 'status'], {});
  tt.same(pod, { argv: ['nsenter', '--net=/run/netns/x-n1.d.a', 'sluice', 'status'], env: {} }, 'a pod is not a node');
  tt.throws(() => execCommand({ netns: '/x' }, [], {}), { message: /no command given/ });
});

t.test('lab restart --upgrade: an agent argv with this build in place of the old one', async (tt) => {
  const { upgradedArgv } = await import('../../src/lab/restart.js');
  const tools = { node: '/new/node', sluice: '/new/bin/sluice.js' };
  tt.same(upgradedArgv(['nsenter', '--net=/run/netns/l-n1', '/old/node', '/old/bin/sluice.js', '--config', '/c.yaml', 'agent'], tools),
    ['nsenter', '--net=/run/netns/l-n1', '/new/node', '/new/bin/sluice.js', '--config', '/c.yaml', 'agent']);
  tt.throws(() => upgradedArgv(['/usr/bin/etcd', '--data-dir', 'x'], tools), /not a lab agent's command line/);
});
