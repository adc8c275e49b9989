import { createPublicKey } from 'node:crypto';
import test from 'ava';
import { ClusterCA } from '../../../mesh/pki/ca.js';
import { bundlePem } from '../../../mesh/pki/certificate.js';
import { startTransport, testCluster } from '../../helpers/cluster.js';
import { captureLogs } from '../../helpers/logs.js';

// This file's loopback block: 127.0.50.0/24. Mid CA rotation, a node renewed under the next CA
// and a node that does not trust the next CA yet still talk, both ways, through the cross-signed
// certificate; once nobody trusts the old CA, its certificates are refused.
const log = captureLogs('rotation').log;

test('a certificate of the next CA, presented with the cross-signed CA, is accepted by a node trusting only the current one', async (t) => {
  const cluster = await testCluster();
  const next = await ClusterCA.create(cluster.ca.clusterId);
  const crossPem = cluster.ca.crossSign(next.certPem);
  const behind = await cluster.identity(); // issued by the current CA, trusts only it
  const renewed = await cluster.identity();
  const ahead = {
    ...renewed,
    ...next.issue({ nodeId: renewed.nodeId, publicKeyPem: publicKeyOf(renewed.keyPem) }),
    caCertPem: bundlePem([cluster.ca.certPem, next.certPem]),
    chainPem: crossPem,
  };
  const a = await startTransport(behind, '127.0.50.1', log);
  const b = await startTransport(ahead, '127.0.50.2', log);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  a.handle('who', (_body, peer) => peer.nodeId);
  b.handle('who', (_body, peer) => peer.nodeId);
  t.is(await a.request(b.address, 'who', null), behind.nodeId);
  t.is(await b.request(a.address, 'who', null), ahead.nodeId);
});

test('without the cross-signed CA, a node trusting only the current CA refuses the next CA’s certificate', async (t) => {
  const cluster = await testCluster();
  const next = await ClusterCA.create(cluster.ca.clusterId);
  const behind = await cluster.identity();
  const renewed = await cluster.identity();
  const ahead = {
    ...renewed,
    ...next.issue({ nodeId: renewed.nodeId, publicKeyPem: publicKeyOf(renewed.keyPem) }),
    caCertPem: bundlePem([next.certPem]),
  };
  const a = await startTransport(behind, '127.0.50.3', log);
  const b = await startTransport(ahead, '127.0.50.4', log);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  b.handle('who', (_body, peer) => peer.nodeId);
  await t.throwsAsync(a.request(b.address, 'who', null, { timeoutMs: 2000 }));
});

function publicKeyOf(keyPem: string): string {
  return createPublicKey(keyPem).export({ type: 'spki', format: 'pem' }).toString();
}
