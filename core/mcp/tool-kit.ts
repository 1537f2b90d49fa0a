/** Helpers for plugin tools (re-exported by core/public.ts): JSON answers under the byte cap. */
import type { ToolResult } from '../plugin.ts';
import type { JsonCallResult } from '../aws/json-call.ts';

/**
 * A JSON answer as a tool result: kept whole when it fits `maxBytes`, else replaced by its
 * first `maxBytes` of JSON text with `truncated: true` (stated, never silent).
 */
export function jsonToolResult(summary: string, answer: Record<string, unknown>, limits: { maxBytes: number }, extra: Record<string, unknown> = {}, isError = false): ToolResult {
  const json = JSON.stringify(answer);
  const bytes = Buffer.byteLength(json);
  const fits = bytes <= limits.maxBytes;
  const caps = { maxBytes: limits.maxBytes, bytes, truncated: !fits };
  const prefix = fits ? json : Buffer.from(json).subarray(0, limits.maxBytes).toString('utf8');
  const structured = fits ? { ...extra, result: answer, caps } : { ...extra, resultJsonPrefix: prefix, caps };
  const text = `${summary}${fits ? '' : ` (answer of ${bytes} bytes cut to ${limits.maxBytes})`}\n${prefix}`;
  return { structured, text, ...(isError ? { isError: true } : {}) };
}

/**
 * An AWS JSON call's answer (createJsonCall) as a tool result: `what`, and on an AWS error
 * `what failed: <type>` with `isError`; the status (and error type) beside the answer.
 */
export function awsCallToolResult(what: string, answer: JsonCallResult, limits: { maxBytes: number }, extra: Record<string, unknown> = {}): ToolResult {
  if (answer.status >= 400) return jsonToolResult(`${what} failed: ${answer.errorType ?? answer.status}`, answer.body, limits, { ...extra, status: answer.status, errorType: answer.errorType }, true);
  return jsonToolResult(what, answer.body, limits, { ...extra, status: answer.status });
}
