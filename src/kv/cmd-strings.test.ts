import { describe, expect, test } from 'vitest';
import { Harness, t0 } from './kv.test-util.js';

const notInt = { err: 'ERR value is not an integer or out of range' };
const wrongType = { err: 'WRONGTYPE Operation against a key holding the wrong kind of value' };

describe('SET and variants', () => {
  test('SET over an existing key of any type replaces its value, type and TTL', () => {
    const h = new Harness();
    h.v('HSET', 'k', 'f', 'v');
    h.v('EXPIRE', 'k', '100');
    expect(h.v('SET', 'k', 's1')).toBe('OK');
    expect(h.v('TYPE', 'k')).toBe('string');
    expect(h.v('TTL', 'k')).toBe(-1);
    expect(h.v('GET', 'k')).toBe('s1');
    expect(h.v('SET', 'k', 's2', 'EX', '50')).toBe('OK');
    expect(h.v('TTL', 'k')).toBe(50);
    expect(h.v('SET', 'k', 's3', 'GET')).toBe('s2');
    expect(h.v('TTL', 'k')).toBe(-1);
    expect(h.v('GET', 'k')).toBe('s3');
    expect(h.v('DBSIZE')).toBe(1);
  });

  test('NX / XX / GET / KEEPTTL', () => {
    const h = new Harness();
    expect(h.v('SET', 'k', 'v1', 'NX')).toBe('OK');
    expect(h.v('SET', 'k', 'v2', 'NX')).toBeNull();
    expect(h.v('SET', 'missing', 'v', 'XX')).toBeNull();
    expect(h.v('SET', 'k', 'v3', 'XX', 'GET')).toBe('v1');
    expect(h.v('SET', 'k', 'v4', 'NX', 'GET')).toBe('v3');
    expect(h.v('SET', 'k', 'v5', 'EX', '100')).toBe('OK');
    expect(h.v('SET', 'k', 'v6', 'KEEPTTL')).toBe('OK');
    expect(h.v('TTL', 'k')).toBe(100);
    expect(h.v('SET', 'k', 'v7')).toBe('OK');
    expect(h.v('TTL', 'k')).toBe(-1);
    h.v('HSET', 'h', 'f', 'v');
    expect(h.v('SET', 'h', 'x', 'GET')).toEqual(wrongType);
    expect(h.v('SET', 'h', 'x')).toBe('OK');
  });

  test('expiry options and their errors', () => {
    const h = new Harness();
    expect(h.v('SET', 'a', 'v', 'PX', '1500')).toBe('OK');
    expect(h.v('PTTL', 'a')).toBe(1500);
    expect(h.v('SET', 'b', 'v', 'EXAT', String(t0 / 1000 + 10))).toBe('OK');
    expect(h.v('TTL', 'b')).toBe(10);
    expect(h.v('SET', 'c', 'v', 'PXAT', String(t0 + 10))).toBe('OK');
    expect(h.v('PEXPIRETIME', 'c')).toBe(t0 + 10);
    expect(h.v('SET', 'k', 'v', 'EX', '-1')).toEqual({
      err: "ERR invalid expire time in 'set' command",
    });
    expect(h.v('SET', 'k', 'v', 'PX', '0')).toEqual({
      err: "ERR invalid expire time in 'set' command",
    });
    expect(h.v('SET', 'k', 'v', 'EX', '9223372036854775807')).toEqual({
      err: "ERR invalid expire time in 'set' command",
    });
    expect(h.v('SET', 'k', 'v', 'EX', '1', 'KEEPTTL')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('SET', 'k', 'v', 'EX')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('SET', 'k', 'v', 'FOO')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('SET', 'k', 'v', 'PXAT', String(t0 - 5))).toBe('OK');
    expect(h.v('EXISTS', 'k')).toBe(0);
    expect(h.v('SETEX', 'k', '0', 'v')).toEqual({
      err: "ERR invalid expire time in 'setex' command",
    });
    expect(h.v('SETEX', 'k', '10', 'v')).toBe('OK');
    expect(h.v('TTL', 'k')).toBe(10);
    expect(h.v('PSETEX', 'k', '250', 'v')).toBe('OK');
    expect(h.v('PTTL', 'k')).toBe(250);
  });

  test('SETNX, GETSET, GETDEL, GETEX, MSET, MSETNX, MGET', () => {
    const h = new Harness();
    expect(h.v('SETNX', 'k', '1')).toBe(1);
    expect(h.v('SETNX', 'k', '2')).toBe(0);
    expect(h.v('GETSET', 'k', '3')).toBe('1');
    expect(h.v('GETDEL', 'k')).toBe('3');
    expect(h.v('GETDEL', 'k')).toBeNull();
    h.v('SET', 'g', 'v');
    expect(h.v('GETEX', 'g', 'EX', '50')).toBe('v');
    expect(h.v('TTL', 'g')).toBe(50);
    expect(h.v('GETEX', 'g', 'PERSIST')).toBe('v');
    expect(h.v('TTL', 'g')).toBe(-1);
    expect(h.v('GETEX', 'g', 'EX', '1', 'PX', '2')).toEqual({ err: 'ERR syntax error' });
    expect(h.v('GETEX', 'nope')).toBeNull();
    expect(h.v('MSET', 'a', '1', 'b', '2')).toBe('OK');
    expect(h.v('MSETNX', 'b', '3', 'c', '4')).toBe(0);
    expect(h.v('MSETNX', 'c', '3', 'd', '4')).toBe(1);
    h.v('LPUSH', 'l', 'x');
    expect(h.v('MGET', 'a', 'nope', 'l', 'd')).toEqual(['1', null, null, '4']);
  });
});

describe('counters', () => {
  test('INCR family with int64 bounds', () => {
    const h = new Harness();
    expect(h.v('INCR', 'n')).toBe(1);
    expect(h.v('INCRBY', 'n', '41')).toBe(42);
    expect(h.v('DECRBY', 'n', '2')).toBe(40);
    expect(h.v('DECR', 'n')).toBe(39);
    h.v('SET', 'big', '9223372036854775806');
    expect(h.v('INCR', 'big')).toBe(9223372036854775807n);
    expect(h.v('INCR', 'big')).toEqual({ err: 'ERR increment or decrement would overflow' });
    expect(h.v('DECRBY', 'n', '-9223372036854775808')).toEqual({
      err: 'ERR decrement would overflow',
    });
    for (const bad of [' 1', '01', '+1', '1.0', '', '9223372036854775808']) {
      h.v('SET', 's', bad);
      expect(h.v('INCR', 's')).toEqual(notInt);
    }
    expect(h.v('INCRBY', 'n', 'x')).toEqual(notInt);
    h.v('RPUSH', 'l', 'x');
    expect(h.v('INCR', 'l')).toEqual(wrongType);
  });

  test('INCRBYFLOAT formats like Redis', () => {
    const h = new Harness();
    h.v('SET', 'f', '10.50');
    expect(h.v('INCRBYFLOAT', 'f', '0.1')).toBe('10.6');
    expect(h.v('INCRBYFLOAT', 'f', '-5')).toBe('5.6');
    h.v('SET', 'e', '5.0e3');
    expect(h.v('INCRBYFLOAT', 'e', '2.0e2')).toBe('5200');
    expect(h.v('INCRBYFLOAT', 'x', '0.1')).toBe('0.1');
    expect(h.v('INCRBYFLOAT', 'x', '0.2')).toBe('0.3');
    expect(h.v('INCRBYFLOAT', 'y', '1e21')).toBe('1000000000000000000000');
    expect(h.v('INCRBYFLOAT', 'x', 'abc')).toEqual({ err: 'ERR value is not a valid float' });
    expect(h.v('INCRBYFLOAT', 'x', 'inf')).toEqual({
      err: 'ERR increment would produce NaN or Infinity',
    });
    h.v('SET', 's', 'str');
    expect(h.v('INCRBYFLOAT', 's', '1')).toEqual({ err: 'ERR value is not a valid float' });
  });
});

describe('APPEND, STRLEN, GETRANGE, SETRANGE', () => {
  test('behave as documented', () => {
    const h = new Harness();
    expect(h.v('APPEND', 'k', 'Hello')).toBe(5);
    expect(h.v('APPEND', 'k', ' World')).toBe(11);
    expect(h.v('STRLEN', 'k')).toBe(11);
    expect(h.v('STRLEN', 'nope')).toBe(0);
    h.v('SET', 'm', 'This is a string');
    expect(h.v('GETRANGE', 'm', '0', '3')).toBe('This');
    expect(h.v('GETRANGE', 'm', '-3', '-1')).toBe('ing');
    expect(h.v('GETRANGE', 'm', '0', '-1')).toBe('This is a string');
    expect(h.v('GETRANGE', 'm', '10', '100')).toBe('string');
    expect(h.v('GETRANGE', 'm', '5', '3')).toBe('');
    expect(h.v('GETRANGE', 'nope', '0', '-1')).toBe('');
    h.v('SET', 'k1', 'Hello World');
    expect(h.v('SETRANGE', 'k1', '6', 'Redis')).toBe(11);
    expect(h.v('GET', 'k1')).toBe('Hello Redis');
    expect(h.v('SETRANGE', 'k2', '6', 'Redis')).toBe(11);
    expect(h.v('GET', 'k2')).toBe('\0\0\0\0\0\0Redis');
    expect(h.v('SETRANGE', 'k3', '5', '')).toBe(0);
    expect(h.v('EXISTS', 'k3')).toBe(0);
    expect(h.v('SETRANGE', 'k1', '-1', 'x')).toEqual({ err: 'ERR offset is out of range' });
    expect(h.v('SETRANGE', 'k1', '536870912', 'x')).toEqual({
      err: 'ERR string exceeds maximum allowed size (proto-max-bulk-len)',
    });
  });

  test('binary values survive unchanged', () => {
    const h = new Harness();
    const bin = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    h.v('SET', 'b', bin);
    expect(h.v('GET', 'b')).toBe(bin);
    expect(h.v('STRLEN', 'b')).toBe(256);
  });
});
