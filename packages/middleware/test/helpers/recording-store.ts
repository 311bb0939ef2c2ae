/**
 * A store wrapper that records calls: a spy around a real store, not a fake (every call still
 * reaches the store).
 */
import { MemoryStore } from '../../src/index.js'
import type { SessionStore } from '../../src/index.js'

export interface Call { op: string, id: string, arg?: unknown }

/** Records every store call, then forwards it to the wrapped store. */
export class RecordingStore implements SessionStore {
  readonly calls: Call[] = []
  /** The wrapped store's promise to apply a write id at most once. */
  readonly exactlyOnce: boolean | undefined
  constructor (readonly inner: SessionStore = new MemoryStore()) {
    this.exactlyOnce = inner.exactlyOnce
    if (typeof inner.invalidations === 'function') this.invalidations = (listener, options) => inner.invalidations!(listener, options)
  }

  ops (op: string): Call[] { return this.calls.filter((c) => c.op === op) }
  load: SessionStore['load'] = async (id, o) => { this.calls.push({ op: 'load', id, arg: o }); return await this.inner.load(id, o) }
  apply: SessionStore['apply'] = async (id, c) => { this.calls.push({ op: 'apply', id, arg: c }); return await this.inner.apply(id, c) }
  destroy: SessionStore['destroy'] = async (id) => { this.calls.push({ op: 'destroy', id }); await this.inner.destroy(id) }
  touch: SessionStore['touch'] = async (id, ttl, now) => { this.calls.push({ op: 'touch', id, arg: ttl }); return await this.inner.touch(id, ttl, now) }
  lock: NonNullable<SessionStore['lock']> = async (id, o) => { this.calls.push({ op: 'lock', id, arg: o }); return await this.inner.lock!(id, o) }
  close = async (): Promise<void> => { await this.inner.close?.() }
  /** The inner store's invalidation channel, when it has one (the near-cache needs it). */
  invalidations: SessionStore['invalidations']
}
