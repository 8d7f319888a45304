import { describe, expect, it } from 'vitest';
import { classify } from './workloads.js';

describe('classify', () => {
  it('counts only refusals that promise "not applied" as failed', () => {
    expect(classify(new Error('TRYAGAIN no leader: an election is in progress'))).toBe('fail');
    expect(classify(new Error('NOSPACE n3 has 0 bytes free'))).toBe('fail');
    expect(
      classify(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
    ).toBe('fail');
  });

  it('treats timeouts, lost connections and anything else as unknown', () => {
    expect(classify(new Error('Command timed out'))).toBe('unknown');
    expect(classify(new Error('Connection is closed.'))).toBe('unknown');
    expect(classify(new Error('ERR the write may or may not have been applied: x'))).toBe(
      'unknown',
    );
    expect(classify('something odd')).toBe('unknown');
  });
});
