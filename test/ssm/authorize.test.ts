/**
 * SSM decisions that moto cannot show end to end (it does not serve ListCommandInvocations,
 * CancelCommand or DescribeInstanceInformation): the scope checks and the response filters,
 * fed with answers shaped as AWS sends them; and the command ledger surviving a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAirlockError } from '../../core/errors.ts';
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

function authorizer() {
  const ledger = new CommandLedger(join(dir, 'ledger.jsonl'));
  ledger.remember(grant.id, MINE, Date.now() + 60_000);
  return createSsmAuthorizer(ledger);
}

const decide = (operation: string, body: Record<string, unknown>) =>
  authorizer()({ operation, body, grant, resourceName: 'fleet', resource });

describe('ssm decisions', () => {
  it('filters DescribeInstanceInformation to the grant instances', () => {
    const d = decide('DescribeInstanceInformation', {});
    const answer = { InstanceInformationList: [{ InstanceId: 'i-0123456789abcdef0' }, { InstanceId: 'i-0123456789abcdef1' }, { InstanceId: 'i-0aaaaaaaaaaaaaaaa' }], NextToken: 't' };
    const out = d.onSuccess?.(Buffer.from(JSON.stringify(answer)));
    const shown = JSON.parse(String(out?.body)) as typeof answer;
    // The grant narrowed the resource to one instance: the second configured one is hidden too.
    assert.deepEqual(shown.InstanceInformationList.map((i) => i.InstanceId), ['i-0123456789abcdef0']);
    assert.equal(shown.NextToken, 't');
    assert.deepEqual(out?.data, { listed: 1, hidden: 2 });
  });

  it('filters ListCommandInvocations to the grant own commands', () => {
    const d = decide('ListCommandInvocations', { Details: true });
    const answer = { CommandInvocations: [{ CommandId: MINE }, { CommandId: THEIRS }] };
    const shown = JSON.parse(String(d.onSuccess?.(Buffer.from(JSON.stringify(answer)))?.body)) as typeof answer;
    assert.deepEqual(shown.CommandInvocations.map((c) => c.CommandId), [MINE]);
  });

  it('allows CancelCommand only for own commands on instances in scope', () => {
    assert.equal(decide('CancelCommand', { CommandId: MINE, InstanceIds: ['i-0123456789abcdef0'] }).record.data['commandId'], MINE);
    assert.throws(() => decide('CancelCommand', { CommandId: THEIRS }), (e: unknown) => isAirlockError(e, 'OUT_OF_SCOPE'));
    assert.throws(() => decide('CancelCommand', { CommandId: MINE, InstanceIds: ['i-0123456789abcdef1'] }), (e: unknown) => isAirlockError(e, 'OUT_OF_SCOPE'));
  });

  it('refuses unknown members, document ARNs of other accounts, and other operations', () => {
    const base = { DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-0123456789abcdef0'] };
    assert.throws(() => decide('SendCommand', { ...base, ServiceRoleArn: 'arn:aws:iam::1:role/x' }), /ServiceRoleArn/);
    assert.throws(() => decide('SendCommand', { ...base, instanceIds: ['i-0aaaaaaaaaaaaaaaa'] }), /instanceIds/);
    assert.throws(() => decide('SendCommand', { ...base, DocumentName: 'arn:aws:ssm:us-east-1:999999999999:document/AWS-RunShellScript' }), /account/);
    assert.ok(decide('SendCommand', { ...base, DocumentName: 'arn:aws:ssm:us-east-1::document/AWS-RunShellScript' }));
    assert.throws(() => decide('DeleteDocument', { Name: 'x' }), (e: unknown) => isAirlockError(e, 'UNRESOLVABLE'));
  });

  it('builds a session policy limited to the grant instances and documents', () => {
    const policy = decide('SendCommand', { DocumentName: 'AWS-RunShellScript', InstanceIds: ['i-0123456789abcdef0'] }).sessionPolicy as {
      Statement: Array<{ Action: string[]; Resource: string[] | string }>;
    };
    const send = policy.Statement.find((s) => s.Action.includes('ssm:SendCommand'));
    assert.deepEqual(send?.Resource, ['arn:aws:ec2:us-east-1:*:instance/i-0123456789abcdef0', 'arn:aws:ssm:us-east-1:*:document/AWS-RunShellScript']);
  });
});

describe('command ledger', () => {
  it('keeps live grants commands across a restart and drops ended ones', () => {
    const file = join(dir, 'restart.jsonl');
    const first = new CommandLedger(file);
    first.remember('AGLIVE', MINE, Date.now() + 60_000);
    first.remember('AGGONE', THEIRS, Date.now() - 1);
    const second = new CommandLedger(file);
    assert.equal(second.owns('AGLIVE', MINE), true);
    assert.equal(second.owns('AGGONE', THEIRS), false);
    assert.equal(second.owns('AGLIVE', THEIRS), false);
  });
});
