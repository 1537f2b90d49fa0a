import type { ConsoleSession } from './session-store.ts';

/** Hono variables of a signed-in console request. */
export type ConsoleEnv = { Variables: { session: ConsoleSession; source: string } };
