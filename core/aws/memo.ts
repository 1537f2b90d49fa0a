/**
 * A bounded memo for pure functions of short texts on the request path (an Authorization
 * header's prefix, a date, a path): hits are a Map lookup; when full it starts over, which
 * costs one miss per key and never serves a stale value (the values depend on the key only).
 */
export class BoundedMemo<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, value);
  }
}
