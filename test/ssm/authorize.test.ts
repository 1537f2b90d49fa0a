/**
 * SSM decisions that moto cannot show end to end (it does not serve ListCommandInvocations,
 * CancelCommand or DescribeInstanceInformation): the scope checks and the response filters,
 * fed with answers shaped as AWS sends them; and the command ledger, kept in the plugin's
 * shared state: surviving a restart (file store) and seen by another replica (PostgreSQL store).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isAirlockError } from '../../core/errors.ts';
import { namespacedState } from '../../core/gateway/plugin-state.ts';
import { FileSharedStore } from '../../core/store/file/store.ts';
import type { JsonDecision } from '../../core/public.ts';
import { startPostgresCluster, type PostgresCluster } from '../harness/postgres-cluster.ts';
import { freshSchema, pgStore } from '../store/pg-backend.ts';
import { createSsmAuthorizer } from '../../plugins/ssm/authorize.ts';
import { CommandLedger } from '../../plugins/ssm/command-ledger.ts';
import { SSM_OPERATIONS, ssmResourceSchema } from '../../plugins/ssm/schema.ts';
import { makeScopedGrant } from '../aws/fake-grants.ts';

const dir = mkdtempSync(join(tmpdir(), 'airlock-ssm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MINE = '11111111-2222-3333-4444-555555555555';
const THEIRS = '99999999-2222-3333-4444-555555555555';
const resource = ssmResourceSchema.parse({
  type: 'ssm',
  region: 'us-east-1',
  instances: ['i-0123456789abcdef0', 'i-0123456789abcdef1'],
  access: { run: { documents: ['AWS-RunShellScript'] } },
});
const grant = makeScopedGrant({
  id: 'AGBBBBBBBBBBBBBBBBBB',
  resource: 'fleet',
  resourceType: 'ssm',
  access: 'run',
  scope: { instances: ['i-0123456789abcdef0'], documents: ['AWS-RunShellScript'], operations: [...SSM_OPERATIONS] },
});

async function fileLedger(name: string): Promise<{ ledger: CommandLedger; store: FileSharedStore }> {
  const store = new FileSharedStore(join(dir, name));
  await store.open();
  return { ledger: new CommandLedger(namespacedState(store.state, 'ssm')), store };
}

let decisions: CommandLedger;
let decisionStore: FileSharedStore | undefined;
before(async () => {
  const made = await fileLedger('decisions');
  decisions = made.ledger;
  decisionStore = made.store;
  await decisions.remember(grant.id, MINE, Date.now() + 60_000);
});
after(() => decisionStore?.close());

// async: a refusal thrown at once and one from a ledger lookup both arrive as a rejection.
const decide = async (operation: string, body: Record<string, unknown>): Promise<JsonDecision> =>
  await createSsmAuthorizer(decisions)({ operation, body, grant, resourceName: 'fleet', resource });

async function inspect(d: JsonDecision, answer: unknown): Promise<{ body?: Buffer | undefined; data?: Record<string, unknown> | undefined } | undefined> {
  return await d.onSuccess?.(Buffer.from(JSON.stringify(answer)));
}

describe('ssm decisions', () => {
  it('filters DescribeInstanceInformation to the grant instances', async () => {
    const d = await decide('DescribeInstanceInformation', {});
    const answer = { InstanceInformationList: [{ InstanceId: 'i-0123456789abcdef0' }, { InstanceId: 'i-0123456789abcdef1' }, { InstanceId: 'i-0aaaaaaaaaaaaaaaa' }], NextToken: 't' };
    const out = await inspect(d, answer);
    const shown = JSON.parse(String(out?.body)) as typeof answer;
    // The grant narrowed the resource to one instance: the second configured one is hidden too.
    assert.deepEqual(shown.InstanceInformationList.map((i) => i.InstanceId), ['i-0123456789abcdef0']);
    assert.equal(shown.NextToken, 't');
    assert.deepEqual(out?.data, { listed: 1, hidden: 2 });
  });

  it('filters ListCommandInvocations to the grant own commands', async () => {
    const d = await decide('ListCommandInvocations', { Details: true });
    const answer = { CommandInvocations: [{ CommandId: MINE }, { CommandId: THEIRS }] };
    const shown = JSON.parse(String((await inspect(d, answer))?.body)) as typeof answer;
    assert.deepEqual(shown.CommandInvocations.map((c) => c.CommandId), [MINE]);
  });

  it('allows CancelCommand only for own commands on instances in scope', async () => {
    assert.equal((await decide('CancelCommand', { CommandId: MINE, InstanceIds: ['i-0123456789abcdef0'] })).record.data['commandId'], MINE);
    await assert.rejects(decide('CancelCommand', { CommandId: THEIRS }), (e: unknown) => isAirlockError(e, 'OUT_OF_SCOPE'));
    await assert.rejects(decide('CancelCommand', { CommandId: MINE, InstanceIds: ['i-0123456789abcdef1'] }), (e: unknown) => isAirlockError(e, 'OUT_OF_SCOPE'));
  });

  it('refuses unknown members, document ARNs of other accounts, and other operations', async () => {
    const base = { DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-0123456789abcdef0'] };
    await assert.rejects(decide('SendCommand', { ...base, ServiceRoleArn: 'arn:aws:iam::1:role/x' }), /ServiceRoleArn/);
    await assert.rejects(decide('SendCommand', { ...base, instanceIds: ['i-0aaaaaaaaaaaaaaaa'] }), /instanceIds/);
    await assert.rejects(decide('SendCommand', { ...base, DocumentName: 'arn:aws:ssm:us-east-1:999999999999:document/AWS-RunShellScript' }), /account/);
    assert.ok(await decide('SendCommand', { ...base, DocumentName: 'arn:aws:ssm:us-east-1::document/AWS-RunShellScript' }));
    await assert.rejects(decide('DeleteDocument', { Name: 'x' }), (e: unknown) => isAirlockError(e, 'UNRESOLVABLE'));
  });

  it('builds a session policy limited to the grant instances and documents', async () => {
    const policy = (await decide('SendCommand', { DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-0123456789abcdef0'] })).sessionPolicy as {
      Statement: Array<{ Action: string[]; Resource: string[] | string }>;
    };
    const send = policy.Statement.find((s) => s.Action.includes('ssm:SendCommand'));
    assert.deepEqual(send?.Resource, ['arn:aws:ec2:us-east-1:*:instance/i-0123456789abcdef0', 'arn:aws:ssm:us-east-1:*:document/AWS-RunShellScript']);
  });
});

describe('command ledger', () => {
  it('keeps live grants commands across a restart and drops ended ones', async () => {
    const first = await fileLedger('restart');
    await first.ledger.remember('AGLIVE', MINE, Date.now() + 60_000);
    await first.ledger.remember('AGGONE', THEIRS, Date.now() - 1);
    await first.store.close();
    const second = await fileLedger('restart');
    try {
      assert.equal(await second.ledger.owns('AGLIVE', MINE), true);
      assert.equal(await second.ledger.owns('AGGONE', THEIRS), false);
      assert.equal(await second.ledger.owns('AGLIVE', THEIRS), false);
    } finally {
      await second.store.close();
    }
  });

  it('a command sent through one replica is the grant\'s own on another (PostgreSQL store)', async () => {
    let cluster: PostgresCluster | undefined;
    const schema = freshSchema();
    const stores = [] as Array<ReturnType<typeof pgStore>>;
    try {
      cluster = await startPostgresCluster();
      for (const name of ['a', 'b']) {
        const s = pgStore(cluster, schema, name);
        await s.open();
        stores.push(s);
      }
      const [onA, onB] = stores.map((s) => new CommandLedger(namespacedState(s.state, 'ssm'))) as [CommandLedger, CommandLedger];
      // SendCommand answered through A: its onSuccess puts the id in the ledger before the client sees it.
      const send = await (createSsmAuthorizer(onA)({ operation: 'SendCommand', body: { DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-0123456789abcdef0'] }, grant, resourceName: 'fleet', resource }));
      assert.deepEqual((await inspect(send, { Command: { CommandId: MINE } }))?.data, { commandId: MINE });
      const onReplicaB = async (operation: string, body: Record<string, unknown>) => await createSsmAuthorizer(onB)({ operation, body, grant, resourceName: 'fleet', resource });
      const get = await onReplicaB('GetCommandInvocation', { CommandId: MINE, InstanceId: 'i-0123456789abcdef0' });
      assert.equal(get.record.data['commandId'], MINE);
      await assert.rejects(onReplicaB('GetCommandInvocation', { CommandId: THEIRS, InstanceId: 'i-0123456789abcdef0' }), (e: unknown) => isAirlockError(e, 'OUT_OF_SCOPE'));
      const list = await onReplicaB('ListCommands', {});
      const shown = JSON.parse(String((await inspect(list, { Commands: [{ CommandId: THEIRS }, { CommandId: MINE }] }))?.body)) as { Commands: Array<{ CommandId: string }> };
      assert.deepEqual(shown.Commands.map((c) => c.CommandId), [MINE]);
      // Another plugin's namespace does not see the ledger.
      assert.deepEqual(await namespacedState(stores[1]!.state, 'postgres').list(), []);
    } finally {
      for (const s of stores) await s.close();
      await cluster?.stop();
    }
  });
});
