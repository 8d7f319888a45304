/**
 * Splits an inline request line into arguments with Redis's quoting rules
 * (sds.c, sdssplitargs): "double quotes" with \n \r \t \b \a \xHH and \<any>
 * escapes, 'single quotes' with \' only, a closing quote must be followed by
 * a space or the end. Inline commands are for telnet users, not a hot path.
 */

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const DOUBLE_QUOTE = 0x22;
const SINGLE_QUOTE = 0x27;
const BACKSLASH = 0x5c;
const LOWER_X = 0x78;

/** C isspace(): space, \t, \n, \v, \f, \r. */
function isSpace(c: number): boolean {
  return c === SPACE || (c >= TAB && c <= CR);
}

/** Ends an unquoted argument (sdssplitargs does not end one at \v or \f). */
function endsWord(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function escapedChar(c: number): string {
  switch (c) {
    case 0x6e:
      return '\n';
    case 0x72:
      return '\r';
    case 0x74:
      return '\t';
    case 0x62:
      return '\b';
    case 0x61:
      return '\x07';
    default:
      return String.fromCharCode(c);
  }
}

/** An argument and the index just past it. */
interface Word {
  readonly value: string;
  readonly end: number;
}

/**
 * The arguments of `line` (a binary string without its line terminator), or
 * null when its quotes are unbalanced.
 */
export function splitInlineArgs(line: string): string[] | null {
  // sdssplitargs reads a C string: a NUL byte ends the line.
  const nul = line.indexOf('\0');
  const text = nul >= 0 ? line.slice(0, nul) : line;
  const args: string[] = [];
  let i = 0;
  // Each word consumes at least one char, so this ends within text.length rounds.
  for (;;) {
    while (i < text.length && isSpace(text.charCodeAt(i))) i++;
    if (i >= text.length) return args;
    const word = readWord(text, i);
    if (word === null) return null;
    args.push(word.value);
    i = word.end;
  }
}

/** Reads one argument starting at `start` (not a space); quotes may start mid-word. */
function readWord(text: string, start: number): Word | null {
  let value = '';
  const runStart = start;
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (endsWord(c)) break;
    if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
      value += text.slice(runStart, i);
      const quoted =
        c === DOUBLE_QUOTE ? readDoubleQuoted(text, i + 1) : readSingleQuoted(text, i + 1);
      if (quoted === null) return null;
      return { value: value + quoted.value, end: quoted.end };
    }
    i++;
  }
  return { value: value + text.slice(runStart, i), end: i };
}

/** After a closing quote only a space or the end may follow. */
function closeQuote(text: string, value: string, quoteAt: number): Word | null {
  const after = quoteAt + 1;
  if (after < text.length && !isSpace(text.charCodeAt(after))) return null;
  return { value, end: after };
}

function readDoubleQuoted(text: string, start: number): Word | null {
  let value = '';
  let runStart = start;
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH && i + 1 < text.length) {
      value += text.slice(runStart, i);
      const next = text.charCodeAt(i + 1);
      const high = i + 3 < text.length ? hexValue(text.charCodeAt(i + 2)) : -1;
      const low = i + 3 < text.length ? hexValue(text.charCodeAt(i + 3)) : -1;
      if (next === LOWER_X && high >= 0 && low >= 0) {
        value += String.fromCharCode(high * 16 + low);
        i += 4;
      } else {
        value += escapedChar(next);
        i += 2;
      }
      runStart = i;
    } else if (c === DOUBLE_QUOTE) {
      return closeQuote(text, value + text.slice(runStart, i), i);
    } else {
      i++;
    }
  }
  return null;
}

function readSingleQuoted(text: string, start: number): Word | null {
  let value = '';
  let runStart = start;
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH && text.charCodeAt(i + 1) === SINGLE_QUOTE) {
      value += `${text.slice(runStart, i)}'`;
      i += 2;
      runStart = i;
    } else if (c === SINGLE_QUOTE) {
      return closeQuote(text, value + text.slice(runStart, i), i);
    } else {
      i++;
    }
  }
  return null;
}
