/**
 * STOP-GAP (until plugin contract v2 lands ErrorCodes.STORE_UNAVAILABLE in core/errors.ts):
 * the error every store operation rejects with when the store cannot be reached. At
 * integration this becomes `new AirlockError(ErrorCodes.STORE_UNAVAILABLE, message)`, which
 * the API maps to 503; the code and message stay as they are here.
 */
export const STORE_UNAVAILABLE = 'STORE_UNAVAILABLE';

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = STORE_UNAVAILABLE;
  readonly httpStatus = 503;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isStoreUnavailable(e: unknown): e is StoreUnavailableError {
  return e instanceof StoreUnavailableError;
}
