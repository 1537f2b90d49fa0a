/**
 * The DynamoDB plugin with the aws CLI as the agent's client, v1 (botocore, first on PATH)
 * and v2 (Debian's awscli), against moto with signature and IAM enforcement. The CLI gets
 * only the grant's `connect.env`; v2 before 2.13 ignores AWS_ENDPOINT_URL_DYNAMODB and is
 * given `--endpoint-url` from `connect.endpoint`, as docs/contract.md says.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { aws, cliEnv, findAwsCli, type AwsCli } from '../aws/cli.ts';
import { grantFor, startDynamoEnv, type DynamoEnv, type IssuedGrant } from './setup.ts';

let env: DynamoEnv;
let reader: IssuedGrant;
let writer: IssuedGrant;
let v1: AwsCli;
let v2: AwsCli;

before(async () => {
  v1 = await findAwsCli(1);
  v2 = await findAwsCli(2);
  env = await startDynamoEnv();
  reader = await grantFor(env, { resource: 'orders', access: 'read' });
  writer = await grantFor(env, { resource: 'orders', access: 'write' });
});
after(async () => {
  await env?.close();
});

const KEY = '{"id":{"S":"1"}}';

/** v2.9 (Debian) predates service endpoint variables: pass the endpoint explicitly. */
function endpointArgs(cli: AwsCli, grant: IssuedGrant): string[] {
  return cli.major === 2 ? ['--endpoint-url', grant.endpoint] : [];
}

for (const which of [1, 2] as const) {
  describe(`dynamodb through airlock (aws CLI v${which})`, () => {
    const cli = () => (which === 1 ? v1 : v2);

    it('reads an item and lists only the grant tables', async () => {
      const got = await aws(cli(), ['dynamodb', 'get-item', '--table-name', 'orders', '--key', KEY, ...endpointArgs(cli(), reader)], cliEnv(reader.env));
      assert.equal(got.code, 0, got.stderr);
      assert.equal((JSON.parse(got.stdout) as { Item: { note: { S: string } } }).Item.note.S, 'orders-1');
      const listed = await aws(cli(), ['dynamodb', 'list-tables', ...endpointArgs(cli(), reader)], cliEnv(reader.env));
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual((JSON.parse(listed.stdout) as { TableNames: string[] }).TableNames, ['customers', 'orders']);
    });

    it('writes with a write grant', async () => {
      const item = `{"id":{"S":"cli-v${which}"},"customer":{"S":"cli"}}`;
      const put = await aws(cli(), ['dynamodb', 'put-item', '--table-name', 'customers', '--item', item, ...endpointArgs(cli(), writer)], cliEnv(writer.env));
      assert.equal(put.code, 0, put.stderr);
      const back = await aws(
        cli(),
        ['dynamodb', 'get-item', '--table-name', 'customers', '--key', `{"id":{"S":"cli-v${which}"}}`, ...endpointArgs(cli(), writer)],
        cliEnv(writer.env),
      );
      assert.equal((JSON.parse(back.stdout) as { Item: { customer: { S: string } } }).Item.customer.S, 'cli');
    });

    it('is refused outside the grant: another table, a batch reaching out, PartiQL, a write on a read grant', async () => {
      const cases: Array<{ args: string[]; grant: IssuedGrant; expect: RegExp }> = [
        { args: ['dynamodb', 'scan', '--table-name', 'secrets'], grant: reader, expect: /AccessDeniedException.*secrets/s },
        {
          args: ['dynamodb', 'batch-get-item', '--request-items', `{"orders":{"Keys":[${KEY}]},"secrets":{"Keys":[${KEY}]}}`],
          grant: reader,
          expect: /AccessDeniedException.*secrets/s,
        },
        { args: ['dynamodb', 'execute-statement', '--statement', 'SELECT * FROM "secrets"'], grant: reader, expect: /AccessDeniedException.*secrets/s },
        { args: ['dynamodb', 'put-item', '--table-name', 'orders', '--item', KEY], grant: reader, expect: /AccessDeniedException.*PutItem/s },
        {
          args: ['dynamodb', 'transact-write-items', '--transact-items', `[{"Delete":{"TableName":"secrets","Key":${KEY}}}]`],
          grant: writer,
          expect: /AccessDeniedException.*secrets/s,
        },
      ];
      for (const c of cases) {
        const res = await aws(cli(), [...c.args, ...endpointArgs(cli(), c.grant)], cliEnv(c.grant.env));
        assert.notEqual(res.code, 0, `${c.args.join(' ')} should fail`);
        assert.match(res.stderr, c.expect);
      }
    });

    it('is refused with a wrong secret and with another region', async () => {
      const wrong = await aws(
        cli(),
        ['dynamodb', 'get-item', '--table-name', 'orders', '--key', KEY, ...endpointArgs(cli(), reader)],
        cliEnv({ ...reader.env, AWS_SECRET_ACCESS_KEY: 'y'.repeat(40) }),
      );
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /InvalidSignatureException/);
      const region = await aws(
        cli(),
        ['dynamodb', 'get-item', '--table-name', 'orders', '--key', KEY, '--region', 'eu-west-1', ...endpointArgs(cli(), reader)],
        cliEnv(reader.env),
      );
      assert.notEqual(region.code, 0);
      assert.match(region.stderr, /InvalidSignatureException.*region/s);
    });
  });
}

describe('audit of the CLI session', () => {
  it('holds every attempt and verifies', async () => {
    const records = env.gw.auditRecords();
    const denied = records.filter((r) => r.type === 'aws.request' && r.outcome === 'denied');
    assert.ok(denied.length >= 10, `denied: ${denied.length}`);
    assert.ok(records.filter((r) => r.type === 'auth.failed').length >= 4);
    const result = await verifyAuditFiles(env.gw.auditFiles(), { publicKeys: [env.gw.gateway.identity.key.publicJwk] });
    assert.equal(result.ok, true, JSON.stringify(result.failure));
  });
});
