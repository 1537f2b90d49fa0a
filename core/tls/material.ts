/**
 * TLS material for the gateway's listeners: the configured cert/key, or a self-signed
 * certificate generated once into dataDir (so clients that pin it keep working across
 * restarts). The certificate names localhost and 127.0.0.1 and the public host.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';
import type { TlsSetting } from '../config/schema.ts';

export interface TlsMaterial {
  key: string;
  cert: string;
  certPem: string;
}

export async function loadTlsMaterial(setting: TlsSetting, dataDir: string, hosts: readonly string[]): Promise<TlsMaterial> {
  if (setting !== 'self-signed') {
    const cert = readFileSync(setting.cert, 'utf8');
    return { key: readFileSync(setting.key, 'utf8'), cert, certPem: cert };
  }
  const dir = join(dataDir, 'tls');
  const certFile = join(dir, 'self-signed.crt');
  const keyFile = join(dir, 'self-signed.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = [...new Set(['localhost', '127.0.0.1', '::1', ...hosts])];
    const notBefore = new Date(Date.now() - 3_600_000);
    const notAfter = new Date(Date.now() + 825 * 86_400_000);
    const pems = await generate([{ name: 'commonName', value: 'airlock gateway' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: notBefore,
      notAfterDate: notAfter,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
      ],
    });
    writeFileSync(keyFile, pems.private, { mode: 0o600 });
    writeFileSync(certFile, pems.cert, { mode: 0o644 });
  }
  const cert = readFileSync(certFile, 'utf8');
  return { key: readFileSync(keyFile, 'utf8'), cert, certPem: cert };
}
