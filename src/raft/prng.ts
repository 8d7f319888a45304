/**
 * Seeded pseudo-random numbers (SplitMix32 seeding an sfc32 generator). The
 * core never uses ambient randomness: every random choice comes from a
 * generator passed in its config, so a run replays exactly from its seed.
 */
export interface Random {
  /** A uniformly distributed integer in [0, boundExclusive). */
  int(boundExclusive: number): number;
  /** A float in [0, 1). */
  float(): number;
}

export class Prng implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  float(): number {
    return this.uint32() / 4294967296;
  }

  int(boundExclusive: number): number {
    if (!(Number.isInteger(boundExclusive) && boundExclusive > 0)) {
      throw new RangeError(`Prng.int: bound must be a positive integer, got ${boundExclusive}`);
    }
    return Math.floor(this.float() * boundExclusive);
  }

  /** A child generator with its own stream, for independent components. */
  fork(): Prng {
    return new Prng(this.uint32());
  }
}
