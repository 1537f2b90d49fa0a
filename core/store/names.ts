/** Names callers give the store: checked the same way by every implementation. */
const SHARED_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NAMESPACE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MAX_KEY = 512;

export function assertSharedName(name: string): void {
  if (!SHARED_NAME.test(name)) throw new Error(`invalid shared value name "${name}"`);
}

export function assertStateKey(namespace: string, key: string): void {
  if (!NAMESPACE.test(namespace)) throw new Error(`invalid state namespace "${namespace}"`);
  if (key.length === 0 || key.length > MAX_KEY) throw new Error(`state key must be 1-${MAX_KEY} characters`);
}
