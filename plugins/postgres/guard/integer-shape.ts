/**
 * A text's shape without the PostgreSQL parser, for the common case it can be read off with
 * certainty: a text whose only literals are small integers (`... WHERE aid = 4711`).
 *
 * `integerShape` answers the text with each integer literal replaced by `$1`, `$2`, … in
 * order, which is what libpg-query's normalize answers for such a text, or null when the
 * text is not of that simple kind. It is null unless the text is written only in
 * characters that cannot start a string, a comment, a quoted identifier, a parameter, a
 * dollar quote or a non-ASCII identifier (letters, digits, `_`, white space and
 * `, ; ( ) . = < > * +`), and every literal is a run of at most 9 digits that starts a token
 * and ends before a character that is neither a letter, a digit, `_` nor `.` (so `1e5`,
 * `1.5`, `.5`, `0x1F`, `1_000` and ten-digit numbers are all null).
 *
 * In that alphabet PostgreSQL's lexer has nothing to choose: identifiers and keywords are
 * runs of letters, digits and `_`; operators are runs of `= < > * +`; a literal as above is
 * one ICONST token, whatever its digits (nine digits always fit an int4). Two texts with one
 * integer shape therefore have the same tokens but for the values of those ICONSTs, and the
 * grammar, which chooses by token kind, gives them the same tree but for those values.
 *
 * That is not yet PostgreSQL's shape: an ICONST the grammar does not make a constant
 * (`FETCH 5`, `float(24)`) is not replaced by normalize. The decision cache therefore uses
 * an integer shape only once normalize has given exactly that text for some text of that
 * shape (decision-cache.ts): then every literal of the shape is a constant PostgreSQL
 * normalises, and every text of the shape normalises to it.
 */

const MAX_DIGITS = 9;

/** Character classes of the alphabet (ASCII only; anything else means "not this kind"). */
const OTHER = 0;
const WORD = 1; // letters and `_` (start or continue an identifier / keyword)
const DIGIT = 2;
const PLAIN = 3; // white space and `, ; ( ) = < > * +`
const DOT = 4;

const CLASS = new Uint8Array(128);
for (let c = 0x41; c <= 0x5a; c++) CLASS[c] = WORD;
for (let c = 0x61; c <= 0x7a; c++) CLASS[c] = WORD;
CLASS[0x5f] = WORD;
for (let c = 0x30; c <= 0x39; c++) CLASS[c] = DIGIT;
for (const ch of ' \t\n\r,;()=<>*+') CLASS[ch.charCodeAt(0)] = PLAIN;
CLASS[0x2e] = DOT;

function classOf(text: string, i: number): number {
  const c = text.charCodeAt(i);
  return c < 128 ? CLASS[c]! : OTHER;
}

export function integerShape(text: string): string | null {
  let out = '';
  let copiedTo = 0;
  let n = 0;
  let i = 0;
  const len = text.length;
  while (i < len) {
    const k = classOf(text, i);
    if (k === WORD) {
      // An identifier or keyword, digits and all.
      i++;
      while (i < len) {
        const w = classOf(text, i);
        if (w !== WORD && w !== DIGIT) break;
        i++;
      }
    } else if (k === DIGIT) {
      const start = i;
      while (i < len && classOf(text, i) === DIGIT) i++;
      if (i - start > MAX_DIGITS) return null;
      if (i < len) {
        const after = classOf(text, i);
        if (after !== PLAIN) return null; // 1e5, 1.5, 0x1F, 1_000, or a character outside the alphabet
      }
      out += text.slice(copiedTo, start) + '$' + ++n;
      copiedTo = i;
    } else if (k === PLAIN) {
      i++;
    } else if (k === DOT) {
      // `t.col` is fine; `.5` would be a numeric literal of another kind.
      if (i + 1 < len && classOf(text, i + 1) === DIGIT) return null;
      i++;
    } else {
      return null;
    }
  }
  return n === 0 ? null : out + text.slice(copiedTo);
}
