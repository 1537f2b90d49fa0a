/**
 * Which tables and item operations a DynamoDB request touches, including PartiQL; and the
 * decision against a grant's scope. Pure functions: no server needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAirlockError } from '../../core/errors.ts';
import { parseStatement } from '../../plugins/dynamodb/partiql.ts';
import { resolveRequest } from '../../plugins/dynamodb/resolve.ts';
import { authorizeDynamodb } from '../../plugins/dynamodb/authorize.ts';
import { dynamodbResourceSchema } from '../../plugins/dynamodb/schema.ts';
import { makeScopedGrant } from '../aws/fake-grants.ts';

const ctx = { region: 'us-east-1', accountId: '123456789012' };

function unresolvable(fn: () => unknown, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isAirlockError(e, 'UNRESOLVABLE'), `expected UNRESOLVABLE, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe('PartiQL parsing', () => {
  it('reads the table, index and action of each statement form', () => {
    assert.deepEqual(
      pick(parseStatement(`SELECT * FROM "orders" WHERE id = 'a'`)),
      { action: 'select', table: 'orders', index: undefined, hasWhere: true },
    );
    assert.deepEqual(pick(parseStatement('select id, total from orders')), { action: 'select', table: 'orders', index: undefined, hasWhere: false });
    assert.deepEqual(pick(parseStatement(`SELECT * FROM "orders"."by-customer" WHERE customer = ?`)), {
      action: 'select',
      table: 'orders',
      index: 'by-customer',
      hasWhere: true,
    });
    assert.deepEqual(pick(parseStatement(`INSERT INTO "my-table" VALUE {'id': 'x', 'n': 5}`)), {
      action: 'insert',
      table: 'my-table',
      index: undefined,
      hasWhere: false,
    });
    assert.equal(parseStatement(`UPDATE "orders" SET total = 5 WHERE id = 'a' RETURNING ALL NEW *`).action, 'update');
    assert.equal(parseStatement(`DELETE FROM orders WHERE id = 'a'`).table, 'orders');
    assert.equal(parseStatement(`EXISTS(SELECT * FROM "orders" WHERE id = 'a')`).table, 'orders');
    assert.equal(parseStatement(`SELECT * FROM "we""ird" WHERE a = 'it''s'`).table, 'we"ird');
  });

  it('redacts literals', () => {
    const s = parseStatement(`SELECT * FROM "orders" WHERE id = 'secret-id' AND n > 42 AND b = \`{a: 1}\``);
    assert.doesNotMatch(s.redacted, /secret-id|42|a: 1/);
    assert.match(s.redacted, /"orders"/);
  });

  it('refuses what it cannot fully read', () => {
    unresolvable(() => parseStatement(`SELECT * FROM orders WHERE id IN (SELECT id FROM secrets)`), /nested/);
    unresolvable(() => parseStatement(`SELECT * FROM orders; DELETE FROM secrets WHERE id = 'a'`));
    unresolvable(() => parseStatement(`SELECT * FROM orders -- comment`), /comments/);
    unresolvable(() => parseStatement(`SELECT * FROM orders /* x */`), /comments/);
    unresolvable(() => parseStatement(`SELECT * FROM orders, secrets`));
    unresolvable(() => parseStatement(`SELECT * FROM orders JOIN secrets`));
    unresolvable(() => parseStatement(`SELECT * FROM "orders`));
    unresolvable(() => parseStatement(`UPSERT INTO orders VALUE {}`));
    unresolvable(() => parseStatement(`UPDATE "orders"."idx" SET a = 1`));
    unresolvable(() => parseStatement(`EXISTS(SELECT * FROM orders)`));
    unresolvable(() => parseStatement(''));
  });
});

describe('table resolution', () => {
  it('reads TableName as a name or an ARN, and IndexName', () => {
    assert.deepEqual(resolveRequest('Query', { TableName: 'orders', IndexName: 'by-customer' }, ctx).indexes, ['orders/by-customer']);
    assert.deepEqual(resolveRequest('GetItem', { TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders' }, ctx).tables, ['orders']);
    const idx = resolveRequest('Scan', { TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/by-customer' }, ctx);
    assert.deepEqual([idx.tables, idx.indexes], [['orders'], ['orders/by-customer']]);
  });

  it('refuses ARNs of another region or account, or when the account is unknown', () => {
    unresolvable(() => resolveRequest('GetItem', { TableName: 'arn:aws:dynamodb:eu-west-1:123456789012:table/orders' }, ctx), /region/);
    unresolvable(() => resolveRequest('GetItem', { TableName: 'arn:aws:dynamodb:us-east-1:999999999999:table/orders' }, ctx), /account/);
    unresolvable(() => resolveRequest('GetItem', { TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders' }, { region: 'us-east-1' }), /accountId/);
    unresolvable(() => resolveRequest('GetItem', { TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2020' }, ctx));
  });

  it('refuses missing, malformed and case-twin table members', () => {
    unresolvable(() => resolveRequest('GetItem', {}, ctx));
    unresolvable(() => resolveRequest('GetItem', { TableName: 'a b' }, ctx));
    unresolvable(() => resolveRequest('GetItem', { TableName: 'orders', tablename: 'secrets' }, ctx), /ambiguous/);
  });

  it('reads every RequestItems key and the item operations of a batch', () => {
    const r = resolveRequest('BatchWriteItem', {
      RequestItems: {
        orders: [{ PutRequest: { Item: {} } }],
        customers: [{ DeleteRequest: { Key: {} } }],
      },
    }, ctx);
    assert.deepEqual(r.tables, ['orders', 'customers']);
    assert.deepEqual(r.itemOperations, ['PutItem', 'DeleteItem']);
    unresolvable(() => resolveRequest('BatchWriteItem', { RequestItems: { orders: [{ UpdateRequest: {} }] } }, ctx));
  });

  it('reads every TransactItems entry', () => {
    const r = resolveRequest('TransactWriteItems', {
      TransactItems: [
        { Put: { TableName: 'orders', Item: {} } },
        { ConditionCheck: { TableName: 'customers', Key: {} } },
        { Update: { TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/audit' } },
      ],
    }, ctx);
    assert.deepEqual(r.tables, ['orders', 'customers', 'audit']);
    assert.deepEqual(r.itemOperations, ['PutItem', 'UpdateItem']);
    unresolvable(() => resolveRequest('TransactGetItems', { TransactItems: [{ Put: { TableName: 'orders' } }] }, ctx));
    unresolvable(() => resolveRequest('TransactWriteItems', { TransactItems: [{ Put: { TableName: 'orders' }, Delete: { TableName: 'x' } }] }, ctx));
  });

  it('reads PartiQL in all three operations', () => {
    assert.deepEqual(resolveRequest('ExecuteStatement', { Statement: 'SELECT * FROM orders' }, ctx).itemOperations, ['Scan']);
    const batch = resolveRequest('BatchExecuteStatement', {
      Statements: [{ Statement: `SELECT * FROM orders WHERE id = '1'` }, { Statement: `DELETE FROM "customers" WHERE id = '2'` }],
    }, ctx);
    assert.deepEqual([batch.tables, batch.itemOperations], [['orders', 'customers'], ['Query', 'DeleteItem']]);
    const tx = resolveRequest('ExecuteTransaction', {
      TransactStatements: [{ Statement: `EXISTS(SELECT * FROM "customers" WHERE id = '2')` }, { Statement: `INSERT INTO orders VALUE {'id': '3'}` }],
    }, ctx);
    assert.deepEqual([tx.tables, tx.itemOperations], [['customers', 'orders'], ['Query', 'PutItem']]);
  });

  it('refuses operations it does not model', () => {
    unresolvable(() => resolveRequest('ExportTableToPointInTime', { TableArn: 'x' }, ctx), /not served/);
    unresolvable(() => resolveRequest('CreateBackup', { TableName: 'orders' }, ctx), /not served/);
    unresolvable(() => resolveRequest('CreateTable', { TableName: 'orders', ResourcePolicy: '{}' }, ctx), /ResourcePolicy/);
  });
});

describe('authorization against a grant', () => {
  const resource = dynamodbResourceSchema.parse({
    type: 'dynamodb',
    region: 'us-east-1',
    tables: ['orders', 'customers'],
    access: {
      read: ['GetItem', 'BatchGetItem', 'Query', 'Scan', 'DescribeTable', 'TransactGetItems', 'ExecuteStatement', 'ListTables'],
      write: ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems', 'BatchExecuteStatement'],
    },
  });
  const grant = (access: string, tables: string[]) =>
    makeScopedGrant({ id: 'AGAAAAAAAAAAAAAAAAAA', access, scope: { tables, operations: [...(resource.access[access] ?? [])] } });
  const decide = (access: string, tables: string[], operation: string, body: Record<string, unknown>) =>
    authorizeDynamodb({ operation, body, grant: grant(access, tables), resourceName: 'orders', resource });
  const outOfScope = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => isAirlockError(e, 'OUT_OF_SCOPE') && pattern.test(e.message));

  it('allows an in-scope read and records the tables, not the values', () => {
    const d = decide('read', ['orders'], 'GetItem', { TableName: 'orders', Key: { id: { S: 'secret-key' } } });
    assert.deepEqual(d.record.data['tables'], ['orders']);
    assert.doesNotMatch(JSON.stringify(d.record.data), /secret-key/);
  });

  it('refuses a table outside the narrowed scope, and an operation outside the level', () => {
    outOfScope(() => decide('read', ['orders'], 'GetItem', { TableName: 'customers' }), /customers is outside/);
    outOfScope(() => decide('read', ['orders'], 'PutItem', { TableName: 'orders' }), /PutItem is not allowed/);
  });

  it('refuses a PartiQL write through a read level', () => {
    outOfScope(() => decide('read', ['orders'], 'ExecuteStatement', { Statement: `DELETE FROM orders WHERE id = '1'` }), /performs DeleteItem/);
  });

  it('refuses a batch whose second table is outside scope', () => {
    outOfScope(
      () => decide('read', ['orders'], 'BatchGetItem', { RequestItems: { orders: { Keys: [] }, customers: { Keys: [] } } }),
      /customers/,
    );
  });

  it('answers ListTables for any level, without listing it', () => {
    const d = decide('write', ['customers'], 'ListTables', {});
    assert.deepEqual(d.local?.body, { TableNames: ['customers'] });
  });

  it('answers ListTables with the grant tables only, paged', () => {
    const d = decide('read', ['orders', 'customers'], 'ListTables', { Limit: 1 });
    assert.deepEqual(d.local?.body, { TableNames: ['customers'], LastEvaluatedTableName: 'customers' });
    const next = decide('read', ['orders', 'customers'], 'ListTables', { ExclusiveStartTableName: 'customers' });
    assert.deepEqual(next.local?.body, { TableNames: ['orders'] });
  });

  it('records item values only when the resource says so', () => {
    const recording = { ...resource, recordItems: true };
    const d = authorizeDynamodb({
      operation: 'GetItem',
      body: { TableName: 'orders', Key: { id: { S: 'k-1' } } },
      grant: grant('read', ['orders']),
      resourceName: 'orders',
      resource: recording,
    });
    assert.match(JSON.stringify(d.record.data), /k-1/);
  });
});

function pick(s: ReturnType<typeof parseStatement>) {
  return { action: s.action, table: s.table, index: s.index, hasWhere: s.hasWhere };
}
