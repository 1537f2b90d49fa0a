/**
 * What the server holds of a session's prepared statements and portals, as far as the audit
 * can know it. A Parse's text counts only once the server confirms it (ParseComplete, in
 * pipeline order): a refused re-Parse (`42P05`) must not rewrite what a later Execute records.
 *
 * Messages not yet answered are kept as pending operations in pipeline order. An Execute is
 * resolved against them at the moment it is forwarded:
 *  - an operation in the same Sync segment as the Execute counts as done: if it fails, the
 *    server skips the rest of the segment, Execute included;
 *  - one in an earlier, unanswered segment leaves the answer open (`unconfirmed`), except a
 *    named Parse of a name that surely exists, which surely fails (42P05);
 *  - simple-query effects (`PREPARE`, `DEALLOCATE`, `DISCARD ALL`) are open until answered.
 * Nothing is ever guessed: open or unknown names are recorded as such, and the outcome record
 * of an open Execute names the statement the server really ran.
 */
import type { RecordedText } from './session-settings.ts';
import { parseStatements } from './split-statements.ts';

/** A simple-query statement that changes prepared statements, applied on its CommandComplete. */
export type SqlEffect =
  | { tag: 'PREPARE'; name: string; text: RecordedText }
  | { tag: 'DEALLOCATE'; name: string }
  | { tag: 'DEALLOCATE ALL' }
  | { tag: 'DISCARD ALL' };

export type PreparedOp =
  | { kind: 'parse'; segment: number; name: string; text: RecordedText }
  | { kind: 'bind'; segment: number; portal: string; statement: string; params: (string | null)[] | undefined }
  | { kind: 'close'; segment: number; target: 'S' | 'P'; name: string }
  | { kind: 'query'; segment: number; effects: SqlEffect[] };

export type Resolution =
  | { state: 'known'; text: RecordedText; statement: string | undefined; params: (string | null)[] | undefined }
  | { state: 'unknown' | 'unconfirmed'; statement: string | undefined };

interface Portal {
  statement: string;
  text: RecordedText | undefined;
  params: (string | null)[] | undefined;
}

const MAY_CHANGE_PREPARED = /\b(prepare|deallocate|discard)\b/i;

/** Effects of a simple query on prepared statements (parsed only when keywords appear). */
export function sqlEffectsOf(sql: string): SqlEffect[] {
  if (!MAY_CHANGE_PREPARED.test(sql)) return [];
  const effects: SqlEffect[] = [];
  for (const { text, node } of parseStatements(sql) ?? []) {
    const prepare = node.PrepareStmt as { name?: string } | undefined;
    const deallocate = node.DeallocateStmt as { name?: string; isall?: boolean } | undefined;
    const discard = node.DiscardStmt as { target?: string } | undefined;
    if (prepare?.name) effects.push({ tag: 'PREPARE', name: prepare.name, text: { sql: text } });
    else if (deallocate) effects.push(deallocate.name ? { tag: 'DEALLOCATE', name: deallocate.name } : { tag: 'DEALLOCATE ALL' });
    else if (discard?.target === 'DISCARD_ALL') effects.push({ tag: 'DISCARD ALL' });
  }
  return effects;
}

export class PreparedStatements {
  private readonly statements = new Map<string, RecordedText>();
  private readonly portals = new Map<string, Portal>();
  /** Unanswered operations in pipeline order from `head`; the oldest is answered first. */
  private readonly pending: PreparedOp[] = [];
  private head = 0;

  /** Note an operation as it is forwarded. */
  add(op: PreparedOp): void {
    this.pending.push(op);
  }

  /** The server answered `op` (the oldest pending one): success, failure, or skipped after an error. */
  settle(op: PreparedOp, outcome: 'ok' | 'failed' | 'skipped'): void {
    // Answers come in order, so `op` is at (or, after a skipped answer, just past) the head.
    let i = this.head;
    while (i < this.pending.length && this.pending[i] !== op) i++;
    if (i < this.pending.length) this.head = i + 1;
    if (this.head > 256 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    if (outcome === 'skipped') return;
    switch (op.kind) {
      case 'parse':
        // The server drops the unnamed statement before parsing, so a failed one leaves none.
        if (outcome === 'ok') this.statements.set(op.name, op.text);
        else if (op.name === '') this.statements.delete('');
        return;
      case 'bind':
        if (outcome === 'ok') this.portals.set(op.portal, { statement: op.statement, text: this.statements.get(op.statement), params: op.params });
        else if (op.portal === '') this.portals.delete('');
        return;
      case 'close':
        if (outcome === 'ok') (op.target === 'S' ? this.statements : this.portals).delete(op.name);
        return;
      case 'query':
        // A simple query replaces the unnamed statement and portal, whatever its outcome.
        this.statements.delete('');
        this.portals.delete('');
        return;
    }
  }

  /** A CommandComplete of a simple query: apply its matching effect, if any. */
  commandDone(op: PreparedOp | undefined, tag: string): void {
    if (op?.kind !== 'query') return;
    const at = op.effects.findIndex((e) => e.tag === tag);
    if (at < 0) return;
    const [effect] = op.effects.splice(0, at + 1).slice(-1);
    if (effect === undefined) return;
    if (effect.tag === 'PREPARE') this.statements.set(effect.name, effect.text);
    else if (effect.tag === 'DEALLOCATE') this.statements.delete(effect.name);
    else {
      const unnamed = this.statements.get('');
      this.statements.clear();
      if (unnamed && effect.tag === 'DEALLOCATE ALL') this.statements.set('', unnamed);
      if (effect.tag === 'DISCARD ALL') this.portals.clear();
    }
  }

  /** ReadyForQuery outside a transaction block: the server has dropped every portal. */
  transactionEnded(): void {
    this.portals.clear();
  }

  /** What an Execute of `portal` forwarded now (in Sync segment `segment`) runs. */
  resolvePortal(portal: string, segment: number): Resolution {
    for (let i = this.pending.length - 1; i >= this.head; i--) {
      const op = this.pending[i]!;
      if (op.kind === 'bind' && op.portal === portal) {
        if (op.segment !== segment) return { state: 'unconfirmed', statement: op.statement };
        const r = this.resolveStatement(op.statement, i, segment);
        return r.state === 'known' ? { ...r, params: op.params } : r;
      }
      const drops = (op.kind === 'close' && op.target === 'P' && op.name === portal) || (op.kind === 'query' && portal === '');
      if (drops || (op.kind === 'query' && op.effects.some((e) => e.tag === 'DISCARD ALL'))) {
        return { state: drops && op.segment === segment ? 'unknown' : 'unconfirmed', statement: undefined };
      }
    }
    const p = this.portals.get(portal);
    if (p === undefined) return { state: 'unknown', statement: undefined };
    return p.text ? { state: 'known', text: p.text, statement: p.statement, params: p.params } : { state: 'unknown', statement: p.statement };
  }

  /** What statement `name` is just before pending operation `before`, for an Execute in `segment`. */
  private resolveStatement(name: string, before: number, segment: number): Resolution {
    for (let i = before - 1; i >= this.head; i--) {
      const op = this.pending[i]!;
      if (op.kind === 'parse' && op.name === name) {
        if (op.segment === segment) return { state: 'known', text: op.text, statement: name, params: undefined };
        // A named Parse of a name that surely exists surely fails (42P05): it changes nothing.
        if (name !== '') {
          const prior = this.resolveStatement(name, i, op.segment);
          if (prior.state === 'known') return prior;
        }
        return { state: 'unconfirmed', statement: name };
      }
      if (op.kind === 'close' && op.target === 'S' && op.name === name) {
        return { state: op.segment === segment ? 'unknown' : 'unconfirmed', statement: name };
      }
      if (op.kind === 'query') {
        if (name === '') return { state: op.segment === segment ? 'unknown' : 'unconfirmed', statement: name };
        if (op.effects.some((e) => e.tag === 'DEALLOCATE ALL' || e.tag === 'DISCARD ALL' || ('name' in e && e.name === name))) {
          return { state: 'unconfirmed', statement: name };
        }
      }
    }
    const text = this.statements.get(name);
    return text ? { state: 'known', text, statement: name, params: undefined } : { state: 'unknown', statement: name };
  }

  /** After the server answered everything before an Execute: what it ran (for the outcome record). */
  confirmedPortal(portal: string): Portal | undefined {
    return this.portals.get(portal);
  }
}
