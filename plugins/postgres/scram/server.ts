/**
 * Server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (channel binding `tls-server-end-point`
 * to airlock's own certificate, RFC 5802 / 5929 / 7677), as PostgreSQL runs it: the client's
 * username attribute is ignored (the startup message names the user), the proof is checked
 * against a stored verifier in constant time, and the exchange always runs to the end, so an
 * unknown user (decoy verifier) and a wrong password look the same from outside.
 */
import { randomBytes } from 'node:crypto';
import type { ScramVerifier } from '../../../core/plugin.ts';
import { ProtocolViolation } from '../wire/buffer-reader.ts';
import { constantTimeEqual, decodeBase64Strict, hmac, isValidNonce, parseAttributes, sha256, SCRAM_SHA_256_PLUS, TLS_SERVER_END_POINT, xor } from './common.ts';

export interface ChannelBinding {
  /** The mechanism the client chose. */
  mechanism: string;
  /** `tls-server-end-point` data of this TLS connection, or null without TLS (PLUS then not offered). */
  endPoint: Buffer | null;
}

export class ScramServerExchange {
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private gs2Header = '';

  constructor(
    private readonly verifier: ScramVerifier,
    private readonly binding: ChannelBinding = { mechanism: 'SCRAM-SHA-256', endPoint: null },
  ) {}

  /** The gs2 channel-binding flag must agree with the mechanism and with what was offered. */
  private checkBindingFlag(flag: string): void {
    const plus = this.binding.mechanism === SCRAM_SHA_256_PLUS;
    if (plus) {
      if (this.binding.endPoint === null) throw new ProtocolViolation('SCRAM: SCRAM-SHA-256-PLUS was not offered');
      if (flag !== `p=${TLS_SERVER_END_POINT}`) throw new ProtocolViolation('SCRAM: SCRAM-SHA-256-PLUS needs channel binding tls-server-end-point');
      return;
    }
    if (flag.startsWith('p=')) throw new ProtocolViolation('SCRAM: channel binding needs SCRAM-SHA-256-PLUS');
    // "y": the client could bind but thinks the server cannot. Over TLS we offered PLUS, so
    // someone removed it on the way: a downgrade (RFC 5802 §6).
    if (flag === 'y' && this.binding.endPoint !== null) throw new ProtocolViolation('SCRAM: channel binding was offered but the client saw no offer');
    if (flag !== 'n' && flag !== 'y') throw new ProtocolViolation('SCRAM: invalid channel binding flag');
  }

  /** Handle client-first-message; returns server-first-message. */
  serverFirstMessage(clientFirst: Buffer): Buffer {
    const text = clientFirst.toString('utf8');
    // gs2-header: cbind-flag "," [authzid] ","
    const first = text.indexOf(',');
    const second = first < 0 ? -1 : text.indexOf(',', first + 1);
    if (first < 0 || second < 0) throw new ProtocolViolation('SCRAM: malformed client-first-message');
    const flag = text.slice(0, first);
    const authzid = text.slice(first + 1, second);
    this.checkBindingFlag(flag);
    if (authzid !== '') throw new ProtocolViolation('SCRAM: authorization identities are not supported');
    this.gs2Header = text.slice(0, second + 1);
    this.clientFirstBare = text.slice(second + 1);
    const attrs = parseAttributes(this.clientFirstBare, 'client-first-message');
    if (attrs[0]?.[0] === 'm') throw new ProtocolViolation('SCRAM: mandatory extensions are not supported');
    if (attrs[0]?.[0] !== 'n' || attrs[1]?.[0] !== 'r') throw new ProtocolViolation('SCRAM: client-first-message lacks n= or r=');
    const clientNonce = attrs[1][1];
    if (!isValidNonce(clientNonce)) throw new ProtocolViolation('SCRAM: invalid client nonce');
    this.nonce = clientNonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    return Buffer.from(this.serverFirst);
  }

  /**
   * Handle client-final-message. Returns the server-final-message when the proof is right,
   * or null when it is wrong. Throws only on a malformed message.
   */
  verifyClientFinal(clientFinal: Buffer): Buffer | null {
    const text = clientFinal.toString('utf8');
    const proofAt = text.lastIndexOf(',p=');
    if (proofAt < 0) throw new ProtocolViolation('SCRAM: client-final-message lacks a proof');
    const withoutProof = text.slice(0, proofAt);
    const attrs = parseAttributes(withoutProof, 'client-final-message');
    if (attrs[0]?.[0] !== 'c' || attrs[1]?.[0] !== 'r') throw new ProtocolViolation('SCRAM: client-final-message lacks c= or r=');
    const binding = decodeBase64Strict(attrs[0][1], 'channel binding');
    const endPoint = this.binding.mechanism === SCRAM_SHA_256_PLUS ? this.binding.endPoint : null;
    const expected = endPoint ? Buffer.concat([Buffer.from(this.gs2Header), endPoint]) : Buffer.from(this.gs2Header);
    if (!constantTimeEqual(binding, expected)) throw new ProtocolViolation('SCRAM: channel binding does not match');
    if (attrs[1][1] !== this.nonce) throw new ProtocolViolation('SCRAM: nonce does not match');
    const proof = decodeBase64Strict(text.slice(proofAt + 3), 'proof');
    if (proof.length !== this.verifier.storedKey.length) throw new ProtocolViolation('SCRAM: proof has the wrong length');

    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.verifier.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    if (!constantTimeEqual(sha256(clientKey), this.verifier.storedKey)) return null;
    const serverSignature = hmac(this.verifier.serverKey, authMessage);
    return Buffer.from(`v=${serverSignature.toString('base64')}`);
  }
}
