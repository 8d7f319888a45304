/** Byte streams in tests: what the storage and snapshot APIs take and give. */

/** The chunks of `source`, concatenated. */
export async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

/** `bytes` as a stream: one chunk, or chunks of `chunkBytes`. */
export async function* chunksOf(
  bytes: Uint8Array,
  chunkBytes = Number.POSITIVE_INFINITY,
): AsyncGenerator<Uint8Array> {
  if (bytes.length <= chunkBytes) {
    yield bytes;
    return;
  }
  for (let at = 0; at < bytes.length; at += chunkBytes) yield bytes.subarray(at, at + chunkBytes);
}
