import { defineConfig } from 'tsdown';

// One bundle for the CLI; dependencies stay external (installed from package.json).
export default defineConfig({
  entry: { main: 'main.ts' },
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  dts: false,
  banner: { js: '#!/usr/bin/env node' },
});
