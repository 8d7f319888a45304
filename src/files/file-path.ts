/**
 * File paths (issue 6): UTF-8, NFC-normalized, relative segments joined by
 * '/', no '.', '..' or empty segments, no control characters, bounded
 * length. Anything else is refused with a message saying why.
 */

export const pathBytesMax = 1024;
export const segmentBytesMax = 255;

export type PathCheck =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly reason: string };

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const controlChars = /[\u0000-\u001f\u007f]/;

const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The normalized form of `raw` (already URL-decoded), or why it is refused. */
export function normalizePath(raw: string): PathCheck {
  if (loneSurrogate.test(raw)) {
    return { ok: false, reason: 'the path is not valid UTF-8 (it holds a lone surrogate)' };
  }
  if (raw.includes('\ufffd')) {
    return { ok: false, reason: 'the path is not valid UTF-8 (it holds a replacement character)' };
  }
  const path = raw.normalize('NFC').replace(/^\/+/, '');
  if (path === '') return { ok: false, reason: 'the path is empty; give a file name' };
  if (controlChars.test(path)) {
    return { ok: false, reason: 'the path holds a control character' };
  }
  if (path.includes('\\')) {
    return { ok: false, reason: "the path holds a backslash; separate folders with '/'" };
  }
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > pathBytesMax) {
    return { ok: false, reason: `the path is ${bytes} bytes long; at most ${pathBytesMax}` };
  }
  for (const segment of path.split('/')) {
    if (segment === '') {
      return { ok: false, reason: "the path has an empty segment ('//' or a trailing '/')" };
    }
    if (segment === '.' || segment === '..') {
      return { ok: false, reason: `the path has a '${segment}' segment; give the path without it` };
    }
    const segmentBytes = Buffer.byteLength(segment, 'utf8');
    if (segmentBytes > segmentBytesMax) {
      return {
        ok: false,
        reason: `a path segment is ${segmentBytes} bytes long; at most ${segmentBytesMax}`,
      };
    }
  }
  return { ok: true, path };
}
