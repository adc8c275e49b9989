import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A self-signed certificate for a host (openssl, EC P-256, two days): its PEM files in dir. */
export async function hostCertificate(
  dir: string,
  host: string,
): Promise<{ certFile: string; keyFile: string }> {
  const [certFile, keyFile] = [join(dir, `${host}.crt`), join(dir, `${host}.key`)];
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${host}`,
    '-addext',
    `subjectAltName=DNS:${host}`,
  ]);
  return { certFile, keyFile };
}

/**
 * Whether a TLS handshake naming `servername` (SNI) with address:port completes with a
 * certificate that `ca` verifies for that name; undefined when it does not (yet).
 */
export function handshakes(
  address: string,
  port: number,
  servername: string,
  ca: Buffer,
): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, servername, ca }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(undefined));
  });
}
