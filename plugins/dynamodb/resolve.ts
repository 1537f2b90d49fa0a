/**
 * Find every table a DynamoDB request touches and every item operation it performs.
 * Fail closed: a table reference we cannot read for certain (a malformed name, an ARN of
 * another region or account, a key spelled in another case that AWS might honour, an entry
 * of an unknown shape) makes the whole request UNRESOLVABLE.
 */
import { AirlockError, ErrorCodes } from '../../core/errors.ts';
import {
  isSupportedOperation,
  MULTI_TABLE_OPERATIONS,
  PARTIQL_OPERATIONS,
  RESOURCE_ARN_OPERATIONS,
  TABLE_NAME_OPERATIONS,
  GLOBAL_OPERATIONS,
} from './operations.ts';
import { parseStatement, type PartiqlStatement } from './partiql.ts';

export const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;
const TABLE_ARN_PATTERN = /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):dynamodb:([a-z0-9-]+):(\d{12}):table\/([A-Za-z0-9_.-]{3,255})(?:\/index\/([A-Za-z0-9_.-]{3,255}))?$/;
/** DynamoDB limits: 100 items per BatchGetItem / transaction, 25 per BatchWriteItem and BatchExecuteStatement. */
const MAX_ENTRIES = 100;

export interface TableContext {
  /** The resource's region: a table ARN must name it. */
  region: string;
  /** The resource's account, when known (accountId or the roleArn's account): ARNs must name it. */
  accountId?: string | undefined;
}

export interface Resolution {
  /** Every table touched, in first-seen order, without duplicates. */
  tables: string[];
  /** Indexes read, as `table/index`. */
  indexes: string[];
  /** Item operations the request performs (see operations.ts). */
  itemOperations: string[];
  /** PartiQL statements with literals replaced by `?`. */
  statements?: string[] | undefined;
}

function unresolvable(message: string): AirlockError {
  return new AirlockError(ErrorCodes.UNRESOLVABLE, message);
}

/**
 * The member `name` of `obj`, refusing when another key differs from it only in case: AWS
 * must not be able to read a table name airlock did not check.
 */
function member(obj: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const key of Object.keys(obj)) {
    if (key !== name && key.toLowerCase() === lower) throw unresolvable(`ambiguous member '${key}' beside '${name}'`);
  }
  return Object.prototype.hasOwnProperty.call(obj, name) ? obj[name] : undefined;
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw unresolvable(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw unresolvable(`${what} must be a list`);
  if (value.length > MAX_ENTRIES) throw unresolvable(`${what} has more than ${MAX_ENTRIES} entries`);
  return value;
}

class Collector {
  readonly tables: string[] = [];
  readonly indexes: string[] = [];
  readonly itemOperations: string[] = [];
  statements: string[] | undefined;

  constructor(private readonly context: TableContext) {}

  /** A table name or table/index ARN, as `TableName`, `ResourceArn` or a `RequestItems` key. */
  tableRef(value: unknown, where: string): string {
    if (typeof value !== 'string') throw unresolvable(`${where} must be a table name`);
    if (TABLE_NAME_PATTERN.test(value)) return this.table(value);
    const arn = TABLE_ARN_PATTERN.exec(value);
    if (arn === null) throw unresolvable(`${where} '${value}' is neither a table name nor a table ARN`);
    const [, , region, account, table, index] = arn as unknown as [string, string, string, string, string, string | undefined];
    if (region !== this.context.region) throw unresolvable(`${where} names a table in region ${region}; this resource is in ${this.context.region}`);
    if (this.context.accountId === undefined) {
      throw unresolvable(`${where} is an ARN, accepted only when the resource names its account (accountId or roleArn); use the table name`);
    }
    if (account !== this.context.accountId) throw unresolvable(`${where} names a table in account ${account}, not this resource's`);
    this.table(table);
    if (index !== undefined) this.index(table, index);
    return table;
  }

  table(name: string): string {
    if (!this.tables.includes(name)) this.tables.push(name);
    return name;
  }

  index(table: string, index: string): void {
    const key = `${table}/${index}`;
    if (!this.indexes.includes(key)) this.indexes.push(key);
  }

  op(name: string): void {
    if (!this.itemOperations.includes(name)) this.itemOperations.push(name);
  }

  statement(value: unknown, where: string): PartiqlStatement {
    if (typeof value !== 'string') throw unresolvable(`${where} must be a PartiQL string`);
    const parsed = parseStatement(value);
    if (!TABLE_NAME_PATTERN.test(parsed.table)) throw unresolvable(`${where}: '${parsed.table}' is not a valid table name`);
    this.table(parsed.table);
    if (parsed.index !== undefined) {
      if (!TABLE_NAME_PATTERN.test(parsed.index)) throw unresolvable(`${where}: '${parsed.index}' is not a valid index name`);
      this.index(parsed.table, parsed.index);
    }
    switch (parsed.action) {
      case 'select':
        this.op(parsed.hasWhere ? 'Query' : 'Scan');
        break;
      case 'insert':
        this.op('PutItem');
        break;
      case 'update':
        this.op('UpdateItem');
        break;
      case 'delete':
        this.op('DeleteItem');
        break;
    }
    (this.statements ??= []).push(parsed.redacted);
    return parsed;
  }
}

const TABLE_NAME_OPS = new Set<string>(TABLE_NAME_OPERATIONS);
const RESOURCE_ARN_OPS = new Set<string>(RESOURCE_ARN_OPERATIONS);
const MULTI_OPS = new Set<string>(MULTI_TABLE_OPERATIONS);
const PARTIQL_OPS = new Set<string>(PARTIQL_OPERATIONS);
const GLOBAL_OPS = new Set<string>(GLOBAL_OPERATIONS);

const TRANSACT_WRITE_KINDS: Readonly<Record<string, string | undefined>> = {
  Put: 'PutItem',
  Update: 'UpdateItem',
  Delete: 'DeleteItem',
  ConditionCheck: undefined,
};

export function resolveRequest(operation: string, body: Record<string, unknown>, context: TableContext): Resolution {
  if (!isSupportedOperation(operation)) {
    throw unresolvable(`operation ${operation} is not served by airlock`);
  }
  const c = new Collector(context);

  if (TABLE_NAME_OPS.has(operation)) {
    c.tableRef(member(body, 'TableName'), 'TableName');
    const indexName = member(body, 'IndexName');
    if (indexName !== undefined) {
      if (typeof indexName !== 'string' || !TABLE_NAME_PATTERN.test(indexName)) throw unresolvable('IndexName is malformed');
      c.index(c.tables[0] as string, indexName);
    }
    if (operation === 'UpdateTable' || operation === 'CreateTable') {
      // Replicas create tables in other regions: not something a grant can vouch for.
      if (member(body, 'ReplicaUpdates') !== undefined) throw unresolvable('ReplicaUpdates reach other regions and are not accepted');
      // A resource policy could open the table to other principals, outside any grant.
      if (member(body, 'ResourcePolicy') !== undefined) throw unresolvable('ResourcePolicy is not accepted through airlock');
    }
  } else if (RESOURCE_ARN_OPS.has(operation)) {
    c.tableRef(member(body, 'ResourceArn'), 'ResourceArn');
  } else if (MULTI_OPS.has(operation)) {
    resolveMulti(operation, body, c);
  } else if (PARTIQL_OPS.has(operation)) {
    resolvePartiql(operation, body, c);
  } else if (!GLOBAL_OPS.has(operation)) {
    throw unresolvable(`operation ${operation} is not served by airlock`);
  }
  return { tables: c.tables, indexes: c.indexes, itemOperations: c.itemOperations, statements: c.statements };
}

function resolveMulti(operation: string, body: Record<string, unknown>, c: Collector): void {
  if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
    const items = asObject(member(body, 'RequestItems'), 'RequestItems');
    const keys = Object.keys(items);
    if (keys.length === 0) throw unresolvable('RequestItems is empty');
    if (keys.length > MAX_ENTRIES) throw unresolvable(`RequestItems names more than ${MAX_ENTRIES} tables`);
    for (const key of keys) {
      c.tableRef(key, 'RequestItems key');
      if (operation === 'BatchGetItem') {
        c.op('GetItem');
        continue;
      }
      for (const [i, entry] of asArray(items[key], `RequestItems.${key}`).entries()) {
        const request = asObject(entry, `RequestItems.${key}[${i}]`);
        const kinds = Object.keys(request);
        if (kinds.length !== 1) throw unresolvable(`RequestItems.${key}[${i}] must hold exactly one PutRequest or DeleteRequest`);
        if (kinds[0] === 'PutRequest') c.op('PutItem');
        else if (kinds[0] === 'DeleteRequest') c.op('DeleteItem');
        else throw unresolvable(`RequestItems.${key}[${i}]: unknown request ${kinds[0]}`);
      }
    }
    return;
  }
  const entries = asArray(member(body, 'TransactItems'), 'TransactItems');
  if (entries.length === 0) throw unresolvable('TransactItems is empty');
  for (const [i, entry] of entries.entries()) {
    const item = asObject(entry, `TransactItems[${i}]`);
    const kinds = Object.keys(item);
    if (kinds.length !== 1) throw unresolvable(`TransactItems[${i}] must hold exactly one action`);
    const kind = kinds[0] as string;
    if (operation === 'TransactGetItems') {
      if (kind !== 'Get') throw unresolvable(`TransactItems[${i}]: TransactGetItems takes only Get, not ${kind}`);
      c.op('GetItem');
    } else {
      if (!Object.prototype.hasOwnProperty.call(TRANSACT_WRITE_KINDS, kind)) throw unresolvable(`TransactItems[${i}]: unknown action ${kind}`);
      const implied = TRANSACT_WRITE_KINDS[kind];
      if (implied !== undefined) c.op(implied);
    }
    const action = asObject(item[kind], `TransactItems[${i}].${kind}`);
    c.tableRef(member(action, 'TableName'), `TransactItems[${i}].${kind}.TableName`);
  }
}

function resolvePartiql(operation: string, body: Record<string, unknown>, c: Collector): void {
  if (operation === 'ExecuteStatement') {
    c.statement(member(body, 'Statement'), 'Statement');
    return;
  }
  const listName = operation === 'BatchExecuteStatement' ? 'Statements' : 'TransactStatements';
  const entries = asArray(member(body, listName), listName);
  if (entries.length === 0) throw unresolvable(`${listName} is empty`);
  for (const [i, entry] of entries.entries()) {
    const parsed = c.statement(member(asObject(entry, `${listName}[${i}]`), 'Statement'), `${listName}[${i}].Statement`);
    if (operation === 'BatchExecuteStatement' && parsed.action === 'select' && parsed.index !== undefined) {
      // DynamoDB refuses index reads in a batch; refusing here keeps the record honest.
      throw unresolvable(`${listName}[${i}]: a batch cannot read an index`);
    }
  }
}
