/**
 * The plugin conformance suite against the EKS plugin: an ordinary HTTPS client (undici,
 * as kubectl's requests) against the EKS API stand-in (test/stand-ins: EKS is AWS-managed).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { AirlockError } from '../../core/errors.ts';
import { statusForError } from '../../plugins/eks/status.ts';
import { startEksApiServer } from '../stand-ins/eks-api-server.ts';
import { startTestGateway, ownAwsIdentityEnv } from '../harness/gateway.ts';
import { runPluginConformance, UpstreamWatch } from './conformance.ts';

const KEYS = { accessKeyId: 'AKIAAIRLOCKEKSCONF01', secretAccessKey: 'airlock-eks-conformance-secret-00000000000' };

runPluginConformance({
  type: 'eks',
  async start() {
    const watch = new UpstreamWatch();
    const cluster = await startEksApiServer({ cluster: 'prod', keys: KEYS, tickMs: 100, onRequest: () => watch.saw() });
    let gw;
    try {
      gw = await startTestGateway({
        env: ownAwsIdentityEnv(KEYS),
        config: {
          gateway: { http: { listen: '127.0.0.1:0', tls: 'self-signed' } },
          aws: { region: 'us-east-1' },
          resources: {
            prod: { type: 'eks', cluster: 'prod', region: 'us-east-1', endpoint: cluster.url, caFile: cluster.caFile, access: { read: { verbs: ['get', 'list', 'watch'], resources: ['pods'], namespaces: ['default'] } } },
          },
          policies: [{ agents: ['local:conformance-bot'], resources: ['prod'], access: ['read'], maxTtl: '15m' }],
        },
      });
    } catch (e) {
      await cluster.close();
      throw e;
    }
    const g0 = gw;
    const dispatcher = new Agent({ connect: { ca: readFileSync(join(g0.dataDir, 'tls', 'self-signed.crt'), 'utf8') } });
    const call = (token: string, path: string, signal?: AbortSignal) => fetch(`${g0.url}/eks/prod${path}`, { headers: { authorization: `Bearer ${token}` }, dispatcher, signal });
    return {
      gw: g0,
      agentToken: await g0.tokenFor('conformance-bot'),
      watch,
      grantRequest: { resource: 'prod', access: 'read', ttl: '5m', task: 'conformance' },
      widenedScope: { namespaces: ['default', 'kube-system'] },
      async refusalFor(id, secret) {
        const res = await call(`${id}.${secret}`, '/api/v1/namespaces/default/pods');
        return `${res.status} ${(await res.text()).replaceAll(id, '<id>')}`;
      },
      async prepareRequest(g, marker) {
        const token = `${g.id}.${g.secret}`;
        return { run: async () => void (await (await call(token, `/api/v1/namespaces/default/pods?labelSelector=${marker}`)).arrayBuffer()), done: async () => {} };
      },
      isRequestRecord: (r, g, marker) => r.type === 'k8s.request' && r.grant === g.id && String(r.data?.['query']).includes(marker),
      async openSession(g) {
        const res = await call(`${g.id}.${g.secret}`, '/api/v1/namespaces/default/pods?watch=true');
        if (res.status !== 200 || !res.body) throw new Error(`watch answered ${res.status}`);
        const reader = res.body.getReader();
        await reader.read(); // the first event: the session is live
        const closed = (async () => {
          let text = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return text;
            text += new TextDecoder().decode(value);
          }
        })();
        return { closed };
      },
      wireError: (code) => {
        const s = statusForError(new AirlockError(code, 'x'));
        return `${s.code} ${s.reason}`;
      },
      internalWireError: '500 InternalError',
      async close() {
        await g0.close();
        await dispatcher.close();
        await cluster.close();
      },
    };
  },
});
