/**
 * The in-process rate-limit store of one policy (no `REDIS_URL`): a fixed window per key, with
 * the semantics of rate-limiter-flexible's `RateLimiterMemory`, which it replaces. A key's window
 * opens at its first consume and lasts `windowSeconds`; every consume in it adds to the key's
 * count, refused ones too (`consumedPoints > points` is a refusal, and it stays refused until the
 * window ends); `reward` takes points back; `delete` forgets the key. Past its end a window is
 * gone, and the next consume opens a new one.
 *
 * Every operation is synchronous, so a burst of requests is counted atomically without locks,
 * and `consumeNow` lets the request path count without a promise. Ended windows are swept
 * without a timer per key: windows are kept in the order they end (one length per policy, and a
 * key whose window restarts moves to the back), so a sweep only looks at the front, and only
 * runs once the front's window has ended.
 *
 *     const counter = new WindowCounter({ points: 600, windowSeconds: 60 })
 *     const state = counter.consumeNow(`user:${id}`)
 *     if (state.consumedPoints > counter.points) refuse(state.msBeforeNext)
 */
import { RateLimiterRes } from "./rate-limiter-res.ts";

interface Window {
  consumed: number;
  /** Epoch ms at which the window ends. */
  readonly endsAt: number;
}

export interface WindowCounterOptions {
  points: number;
  windowSeconds: number;
  /** The clock (epoch ms); Date.now by default. */
  now?: () => number;
}

export class WindowCounter {
  /** The quota per window. */
  readonly points: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  /** Live windows in the order they end (Map keeps insertion order). */
  readonly #windows = new Map<string, Window>();
  /** When the front window ends: no sweep is needed before. */
  #nextEnd = Number.POSITIVE_INFINITY;

  constructor(options: WindowCounterOptions) {
    if (!(options.windowSeconds > 0)) {
      throw new Error(`a rate-limit window must last more than 0 seconds, got ${options.windowSeconds}`);
    }
    this.points = options.points;
    this.#windowMs = options.windowSeconds * 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Keys with a window that has not been swept yet (ended windows linger until the next sweep). */
  get size(): number {
    return this.#windows.size;
  }

  /** Counts `points` against `key` and returns the key's state, over the limit or not. */
  consumeNow(key: string, points = 1): RateLimiterRes {
    return this.#add(key, points);
  }

  /** rate-limiter-flexible's `consume`: rejects with the state when the window is spent. */
  consume(key: string, points = 1): Promise<RateLimiterRes> {
    const state = this.#add(key, points);
    return state.consumedPoints > this.points ? Promise.reject(state) : Promise.resolve(state);
  }

  /** Gives `points` back to `key` (in a new window if its window has ended, as RateLimiterMemory does). */
  reward(key: string, points = 1): Promise<RateLimiterRes> {
    return Promise.resolve(this.#add(key, -points));
  }

  /** The key's state, or null when it has no live window. */
  get(key: string): Promise<RateLimiterRes | null> {
    const now = this.#now();
    const window = this.#windows.get(key);
    if (window === undefined || window.endsAt <= now) return Promise.resolve(null);
    return Promise.resolve(this.#state(window, now, false));
  }

  /** Forgets the key; true when it had a live window. */
  delete(key: string): Promise<boolean> {
    const window = this.#windows.get(key);
    if (window === undefined) return Promise.resolve(false);
    this.#windows.delete(key); // the front may go: the next sweep finds the new one
    return Promise.resolve(window.endsAt > this.#now());
  }

  #add(key: string, points: number): RateLimiterRes {
    const now = this.#now();
    if (now >= this.#nextEnd) this.#sweep(now);
    const window = this.#windows.get(key);
    if (window !== undefined && window.endsAt > now) {
      window.consumed += points;
      return this.#state(window, now, false);
    }
    // A new window goes to the back, where the latest ends are.
    if (window !== undefined) this.#windows.delete(key);
    const opened: Window = { consumed: points, endsAt: now + this.#windowMs };
    this.#windows.set(key, opened);
    if (opened.endsAt < this.#nextEnd) this.#nextEnd = opened.endsAt;
    return this.#state(opened, now, true);
  }

  /** Drops ended windows from the front; stops at the first live one. */
  #sweep(now: number): void {
    for (const [key, window] of this.#windows) {
      if (window.endsAt > now) {
        this.#nextEnd = window.endsAt;
        return;
      }
      this.#windows.delete(key);
    }
    this.#nextEnd = Number.POSITIVE_INFINITY;
  }

  #state(window: Window, now: number, first: boolean): RateLimiterRes {
    const consumed = window.consumed;
    return new RateLimiterRes(Math.max(this.points - consumed, 0), window.endsAt - now, consumed, first);
  }
}
