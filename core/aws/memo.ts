/**
 * A bounded memo for pure functions of short texts on the request path (an Authorization
 * header's prefix, a date, a path): hits are a Map lookup; when full it starts over, which
 * costs one miss per key and never serves a stale value (the values depend on the key only).
 *
 * It is filled before a request is authenticated, so it is bounded in size, not only in
 * count: a key longer than `maxKeyLength` is never remembered (no client sends such a key
 * twice in earnest, and a stranger cannot make the memo hold more than max × maxKeyLength).
 */
export class BoundedMemo<V> {
  private readonly map = new Map<string, V>();
  constructor(
    private readonly max: number,
    private readonly maxKeyLength: number,
  ) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  /** The remembered value for `key`, or `compute(key)` (remembered when the key is short enough). */
  getOrCompute(key: string, compute: (key: string) => V): V {
    let value = this.map.get(key);
    if (value === undefined) {
      value = compute(key);
      this.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    if (key.length > this.maxKeyLength) return;
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
  }
}
