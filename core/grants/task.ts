/**
 * A grant's `task` must say something a person can read. `trim()` removes only
 * whitespace, so a task of zero-width spaces, joiners, bidi marks or other format
 * characters would pass "task is required" and show as blank in the console and the audit.
 */

/** Whitespace, format characters (Cf: zero-width, bidi controls, BOM…), separators and controls. */
const INVISIBLE = /[\s\p{Cf}\p{Z}\p{Cc}\u115F\u1160\u3164\uFFA0\u2800]/gu;

/** True when the text has at least one visible character. */
export function hasVisibleText(text: string): boolean {
  return text.replace(INVISIBLE, '').length > 0;
}
