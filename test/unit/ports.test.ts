import t from 'tap';
import { checkPorts, parsePortSpec } from '../../src/endpoint/ports.js';

t.test('checkPorts', async (t) => {
  t.same(checkPorts(undefined), []);
  t.same(checkPorts([{ port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }]), [{ port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }]);
  t.throws(() => checkPorts({}), /ports must be a list/);
  t.throws(() => checkPorts([{ port: 0 }]), /ports\[0\]\.port must be an integer from 1 to 65535, got 0/);
  t.throws(() => checkPorts([{ port: 80, protocol: 'ICMP' }]), /ports\[0\]\.protocol must be TCP, UDP or SCTP, got "ICMP"/);
  t.throws(() => checkPorts([{ port: 80, name: 'HTTP' }]), /ports\[0\]\.name "HTTP" is not a valid port name/);
  t.throws(() => checkPorts([{ port: 80, name: '8080' }]), /is not a valid port name/, 'needs a letter');
  t.throws(() => checkPorts([{ port: 80, name: 'a-very-long-port-name' }]), /is not a valid port name/);
  t.throws(() => checkPorts([{ port: 80, name: 'web' }, { port: 81, name: 'web' }]), /ports\[1\]\.name 'web' is used twice/);
});

t.test('parsePortSpec', async (t) => {
  t.same(parsePortSpec('http:80/TCP'), { name: 'http', port: 80, protocol: 'TCP' });
  t.same(parsePortSpec('53/udp'), { port: 53, protocol: 'UDP' });
  t.same(parsePortSpec('8080'), { port: 8080, protocol: 'TCP' });
  t.throws(() => parsePortSpec('http'), /port 'http' is not \[NAME:\]PORT\[\/PROTOCOL\]/);
  t.throws(() => parsePortSpec('70000'), /must be an integer from 1 to 65535/);
});
