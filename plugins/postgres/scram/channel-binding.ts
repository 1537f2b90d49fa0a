/**
 * `tls-server-end-point` channel binding data (RFC 5929 §4.1): the hash of the server's own
 * certificate, with the hash function of the certificate's signature algorithm, except that
 * MD5 and SHA-1 are replaced by SHA-256. This is what libpq computes over its TLS session
 * with airlock, so a client with `channel_binding=require` knows no one sits in between.
 */
import { createHash } from 'node:crypto';

/** DER-encoded signature algorithm OIDs (content bytes, hex) → the hash to use. */
const HASH_BY_OID: Readonly<Record<string, string>> = {
  '2a864886f70d010104': 'sha256', // md5WithRSAEncryption → sha256
  '2a864886f70d010105': 'sha256', // sha1WithRSAEncryption → sha256
  '2a864886f70d01010b': 'sha256', // sha256WithRSAEncryption
  '2a864886f70d01010c': 'sha384', // sha384WithRSAEncryption
  '2a864886f70d01010d': 'sha512', // sha512WithRSAEncryption
  '2a8648ce3d0401': 'sha256', // ecdsa-with-SHA1 → sha256
  '2a8648ce3d040302': 'sha256', // ecdsa-with-SHA256
  '2a8648ce3d040303': 'sha384', // ecdsa-with-SHA384
  '2a8648ce3d040304': 'sha512', // ecdsa-with-SHA512
};

/** Read one DER TLV at `pos`: tag, content start and end. */
function tlv(der: Buffer, pos: number): { tag: number; start: number; end: number } {
  const tag = der[pos]!;
  let len = der[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('certificate DER is truncated');
  return { tag, start, end: start + len };
}

/** The hash named by the certificate's signatureAlgorithm (Certificate ::= SEQ { tbs, sigAlg, sig }). */
export function endPointHashName(certDer: Buffer): string {
  const cert = tlv(certDer, 0);
  const tbs = tlv(certDer, cert.start);
  const sigAlg = tlv(certDer, tbs.end);
  const oid = tlv(certDer, sigAlg.start);
  if (oid.tag !== 0x06) throw new Error('certificate signature algorithm is not an OID');
  const hash = HASH_BY_OID[certDer.subarray(oid.start, oid.end).toString('hex')];
  if (!hash) throw new Error('unsupported certificate signature algorithm for channel binding');
  return hash;
}

export function tlsServerEndPoint(certDer: Buffer): Buffer {
  return createHash(endPointHashName(certDer)).update(certDer).digest();
}
