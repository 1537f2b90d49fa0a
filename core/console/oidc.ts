/**
 * Console sign-in through an OIDC issuer (a `jwks` issuer with `clientId`): authorization
 * code flow with PKCE (S256), `state` bound to the browser by a cookie, and `nonce` bound
 * to the ID token. The ID token is verified against the issuer's configured JWKS with its
 * issuer and the client id as audience; the identity is `<issuer name>:<sub>` as for API
 * tokens from the same issuer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { fetch } from 'undici';
import type { IssuerConfig } from '../config/schema.ts';

type JwksIssuer = Extract<IssuerConfig, { type: 'jwks' }>;

const FLOW_MS = 10 * 60_000;
const MAX_FLOWS = 10_000;

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

interface Flow {
  issuer: string;
  verifier: string;
  nonce: string;
  startedAt: number;
}

export class OidcError extends Error {
  override readonly name = 'OidcError';
}

export class OidcClients {
  private readonly issuers: Map<string, JwksIssuer>;
  private readonly discovery = new Map<string, Promise<Discovery>>();
  private readonly keys = new Map<string, JWTVerifyGetKey>();
  private readonly flows = new Map<string, Flow>();

  constructor(
    issuers: readonly IssuerConfig[],
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.issuers = new Map(issuers.filter((i): i is JwksIssuer => i.type === 'jwks' && i.clientId !== undefined).map((i) => [i.name, i]));
  }

  /** Issuers offered on the sign-in page. */
  names(): string[] {
    return [...this.issuers.keys()];
  }

  /** Starts a flow: the state (cookie + query) and where to send the browser. */
  async begin(name: string, redirectUri: string): Promise<{ state: string; location: string }> {
    const issuer = this.issuer(name);
    const d = await this.discover(issuer);
    this.sweep();
    const state = randomBytes(24).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    const nonce = randomBytes(16).toString('base64url');
    this.flows.set(state, { issuer: name, verifier, nonce, startedAt: Date.now() });
    const url = new URL(d.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: issuer.clientId!,
      redirect_uri: redirectUri,
      scope: 'openid',
      state,
      nonce,
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    return { state, location: url.toString() };
  }

  /** Completes a flow begun with `state`: returns the verified subject. */
  async complete(name: string, state: string, code: string, redirectUri: string): Promise<{ agent: string; exp: number | undefined }> {
    const flow = this.flows.get(state);
    this.flows.delete(state); // one use, whatever happens
    if (!flow || flow.issuer !== name || Date.now() - flow.startedAt > FLOW_MS) throw new OidcError('sign-in expired or was not started here; start again');
    const issuer = this.issuer(name);
    const d = await this.discover(issuer);
    const idToken = await this.exchange(issuer, d, code, redirectUri, flow.verifier);
    let payload;
    try {
      ({ payload } = await jwtVerify(idToken, this.jwks(issuer), {
        issuer: issuer.issuer,
        audience: issuer.clientId!,
        requiredClaims: ['sub', 'exp'],
        ...(issuer.algorithms ? { algorithms: issuer.algorithms.filter((a) => a.toLowerCase() !== 'none') } : {}),
        clockTolerance: 30,
      }));
    } catch (e) {
      throw new OidcError(`ID token rejected (${(e as { code?: string }).code ?? 'invalid'})`);
    }
    if (payload.nonce !== flow.nonce) throw new OidcError('ID token nonce does not match this sign-in');
    return { agent: `${name}:${payload.sub}`, exp: payload.exp };
  }

  private async exchange(issuer: JwksIssuer, d: Discovery, code: string, redirectUri: string, verifier: string): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (issuer.clientSecretEnv) {
      const secret = this.env[issuer.clientSecretEnv];
      if (!secret) throw new OidcError(`issuer ${issuer.name}: ${issuer.clientSecretEnv} (clientSecretEnv) is not set`);
      const enc = (s: string) => encodeURIComponent(s);
      headers.authorization = `Basic ${Buffer.from(`${enc(issuer.clientId!)}:${enc(secret)}`).toString('base64')}`;
    } else {
      body.set('client_id', issuer.clientId!);
    }
    const res = await fetch(d.token_endpoint, { method: 'POST', headers, body: body.toString(), signal: AbortSignal.timeout(10_000) });
    const json = (await res.json().catch(() => ({}))) as { id_token?: unknown; error?: unknown; error_description?: unknown };
    if (!res.ok || typeof json.id_token !== 'string') {
      const why = typeof json.error === 'string' ? `${json.error}${typeof json.error_description === 'string' ? `: ${json.error_description.slice(0, 200)}` : ''}` : `HTTP ${res.status}`;
      throw new OidcError(`token exchange failed (${why})`);
    }
    return json.id_token;
  }

  private issuer(name: string): JwksIssuer {
    const issuer = this.issuers.get(name);
    if (!issuer) throw new OidcError(`no OIDC sign-in for issuer "${name}"`);
    return issuer;
  }

  private jwks(issuer: JwksIssuer): JWTVerifyGetKey {
    let keys = this.keys.get(issuer.name);
    if (!keys) this.keys.set(issuer.name, (keys = createRemoteJWKSet(new URL(issuer.jwksUri), { timeoutDuration: 5_000 })));
    return keys;
  }

  private discover(issuer: JwksIssuer): Promise<Discovery> {
    let d = this.discovery.get(issuer.name);
    if (!d) {
      d = fetchDiscovery(issuer.issuer);
      this.discovery.set(issuer.name, d);
      d.catch(() => this.discovery.delete(issuer.name));
    }
    return d;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, f] of this.flows) if (now - f.startedAt > FLOW_MS) this.flows.delete(k);
    for (const k of this.flows.keys()) {
      if (this.flows.size < MAX_FLOWS) break;
      this.flows.delete(k);
    }
  }
}

async function fetchDiscovery(iss: string): Promise<Discovery> {
  const url = `${iss.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000), headers: { accept: 'application/json' } }).catch((e: unknown) => {
    throw new OidcError(`cannot reach the issuer's discovery document (${(e as Error).message})`);
  });
  const d = (await res.json().catch(() => ({}))) as Partial<Discovery> & { issuer?: unknown };
  if (!res.ok || typeof d.authorization_endpoint !== 'string' || typeof d.token_endpoint !== 'string') {
    throw new OidcError(`issuer discovery document at ${url} is unusable (HTTP ${res.status})`);
  }
  if (d.issuer !== iss) throw new OidcError(`issuer discovery document names issuer ${String(d.issuer)}, expected ${iss}`);
  return { authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint };
}
