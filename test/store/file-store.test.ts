/** The shared-store conformance suite against the file store (one process). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSharedStore } from '../../core/store/file/store.ts';
import { storeConformance } from './conformance.ts';

storeConformance({
  name: 'file',
  instances: 1,
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-store-'));
    return {
      make: (replicaId) => new FileSharedStore(dir, replicaId),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
});
