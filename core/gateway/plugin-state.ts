/**
 * A plugin's view of the store's plugin state: its own namespace (the plugin's type), so one
 * plugin cannot read or overwrite another's entries.
 */
import type { PluginState } from '../plugin.ts';
import type { PluginStateStore } from '../store/types.ts';

export function namespacedState(store: PluginStateStore, namespace: string): PluginState {
  return {
    get: (key) => store.get(namespace, key),
    put: (key, value, options) => store.put(namespace, key, value, options),
    putIfAbsent: (key, value, options) => store.putIfAbsent(namespace, key, value, options),
    delete: (key) => store.delete(namespace, key),
    async list(prefix) {
      return (await store.list(namespace, prefix)).map((e) => ({ key: e.key, value: e.value }));
    },
  };
}
