/**
 * `kubernetes_request` against the EKS stand-in API server (it checks airlock's EKS token as
 * aws-iam-authenticator does): a GET of a pod through a read grant, a namespace and a verb
 * outside the grant refused without reaching the cluster, exec refused, records written.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, type TestGateway, ownAwsIdentityEnv } from '../harness/gateway.ts';
import { startEksApiServer, type EksApiServer } from '../stand-ins/eks-api-server.ts';
import { connectClient, type McpTestClient } from './clients.ts';

const KEYS = { accessKeyId: 'AKIAAIRLOCKEKSTEST01', secretAccessKey: 'airlock-eks-test-secret-key-0000000000000' };
const AGENT = 'kube-bot';

describe('MCP with EKS', () => {
  let cluster: EksApiServer;
  let gw: TestGateway;
  let c: McpTestClient;

  before(async () => {
    cluster = await startEksApiServer({ cluster: 'prod', keys: KEYS });
    gw = await startTestGateway({
      env: ownAwsIdentityEnv(KEYS),
      config: {
        aws: { region: 'us-east-1' },
        resources: {
          prod: {
            type: 'eks',
            cluster: 'prod',
            region: 'us-east-1',
            endpoint: cluster.url,
            caFile: cluster.caFile,
            access: { read: { verbs: ['get', 'list'], resources: ['pods'], namespaces: ['default'] } },
          },
        },
        policies: [{ agents: [`local:${AGENT}`], resources: ['prod'], access: ['read'], maxTtl: '15m' }],
        audit: { durability: 'strict' },
      },
    });
    c = await connectClient('client-2.x-legacy', `${gw.url}/mcp`, await gw.tokenFor(AGENT));
  });

  after(async () => {
    await c?.close().catch(() => {});
    await gw?.close();
    await cluster?.close();
  });

  test('a Kubernetes GET through a read grant; out-of-scope namespace, verb and exec refused before the cluster', async () => {
    const r = await c.call('request_grant', { resource: 'prod', access: 'read', ttl: '5m', task: 'look at web-1' });
    const id = String((r.structured.grant as Record<string, unknown>).id);
    const got = await c.call('kubernetes_request', { grant_id: id, verb: 'get', path: '/api/v1/namespaces/default/pods/web-1' });
    assert.equal(got.isError, false, got.text);
    const pod = got.structured.result as { kind?: string; metadata?: { name?: string } };
    assert.equal(pod.kind, 'Pod');
    assert.equal(pod.metadata?.name, 'web-1');
    assert.ok(cluster.seen.some((s) => s.path === '/api/v1/namespaces/default/pods/web-1'), 'the cluster served it');

    const seenBefore = cluster.seen.length;
    const other = await c.call('kubernetes_request', { grant_id: id, verb: 'get', path: '/api/v1/namespaces/team-b/pods/db-1' });
    assert.equal(other.isError, true);
    assert.match(other.text, /namespace "team-b"/);
    const del = await c.call('kubernetes_request', { grant_id: id, verb: 'delete', path: '/api/v1/namespaces/default/pods/web-1' });
    assert.equal(del.isError, true);
    assert.match(del.text, /verb "delete"/);
    const exec = await c.call('kubernetes_request', { grant_id: id, verb: 'create', path: '/api/v1/namespaces/default/pods/web-1/exec?command=sh' });
    assert.equal(exec.isError, true);
    assert.equal(cluster.seen.length, seenBefore, 'no refused request reached the cluster');

    const records = gw.auditRecords().filter((x) => x.grant === id);
    const request = records.find((x) => x.type === 'k8s.request' && x.outcome === 'ok');
    assert.equal(request?.data?.name, 'web-1');
    assert.ok(records.some((x) => x.type === 'k8s.response' && x.data?.status === 200));
    assert.equal(records.filter((x) => x.type === 'k8s.request' && x.outcome === 'denied').length, 3);
    assert.ok(!JSON.stringify([got, gw.auditRecords()]).includes(KEYS.secretAccessKey));
  });
});
