/**
 * Holding back a Node response until some work has finished: the way express-session and
 * compression hook `writeHead`/`write`/`end`, made strict enough that the work completes before
 * the status line and headers leave, for streaming responses too.
 *
 * The first output call (writeHead, write, end or flushHeaders) starts the work and is queued
 * with everything after it. When the work resolves, the queue is replayed in order through the
 * methods that were in place before ours (another middleware's wrappers included). While held,
 * `write()` answers `false`, so a stream piped into the response pauses and waits for the
 * 'drain' we emit after the replay: backpressure holds without buffering a whole stream.
 */
import type { ServerResponse } from 'node:http'

/** The work a response waits for, and what to do when it fails. */
export interface OutputTask {
  /** Runs once, at the first output call; every output call waits until it settles. */
  beforeOutput (res: ServerResponse): Promise<void>
  /**
   * `beforeOutput` rejected. The held output has been dropped and nothing was sent, so the
   * task can answer with the error instead.
   */
  failed (res: ServerResponse, err: unknown): void
  /** The response closed (finished or aborted). `busy` is true while `beforeOutput` runs. */
  closed (res: ServerResponse, busy: boolean): void
}

const enum Phase { Open, Holding, Released, Failed }
const enum Kind { WriteHead, Write, End, FlushHeaders }

type Method = (...args: unknown[]) => unknown
interface Held { readonly kind: Kind, readonly args: unknown[] }

const kHold = Symbol('tether.holdOutput')
type Hooked = ServerResponse & { [kHold]?: HeldOutput }

class HeldOutput {
  phase = Phase.Open
  queue: Held[] = []
  /** A write was answered `false` while held: that writer waits for a 'drain'. */
  owesDrain = false
  readonly task: OutputTask
  readonly writeHead: Method
  readonly write: Method
  readonly end: Method
  readonly flushHeaders: Method

  constructor (res: ServerResponse, task: OutputTask) {
    this.task = task
    this.writeHead = res.writeHead as Method
    this.write = res.write as Method
    this.end = res.end as Method
    this.flushHeaders = res.flushHeaders as Method
  }

  add (res: ServerResponse, kind: Kind, args: unknown[]): void {
    this.queue.push({ kind, args })
    if (this.phase !== Phase.Open) return
    this.phase = Phase.Holding
    this.task.beforeOutput(res).then(() => this.#release(res), (err: unknown) => this.#fail(res, err))
  }

  #release (res: ServerResponse): void {
    this.phase = Phase.Released
    const queue = this.queue
    this.queue = []
    for (const call of queue) {
      if (call.kind === Kind.WriteHead) mergeSetCookie(res, call.args)
      Reflect.apply(this.#method(call.kind), res, call.args)
    }
    // Our `false` made a writer wait; if the real stream is not itself backed up, no 'drain'
    // would ever come, so we owe it one.
    if (this.owesDrain && !res.writableEnded && !res.writableNeedDrain) res.emit('drain')
  }

  #fail (res: ServerResponse, err: unknown): void {
    // Nothing held is sent: the response becomes the error. Writes still arriving come from the
    // handler whose output was dropped and are dropped too; end() and writeHead() pass, since
    // that is how error handlers (finalhandler, res.send) answer.
    this.phase = Phase.Failed
    this.queue = []
    this.task.failed(res, err)
  }

  #method (kind: Kind): Method {
    switch (kind) {
      case Kind.WriteHead: return this.writeHead
      case Kind.Write: return this.write
      case Kind.End: return this.end
      case Kind.FlushHeaders: return this.flushHeaders
    }
  }
}

/**
 * Make every output call on `res` wait for `task.beforeOutput`. Call once per response.
 *
 * @example
 * ```ts
 * holdOutput(res, {
 *   beforeOutput: async (res) => { res.setHeader('set-cookie', await saveSession()) },
 *   failed: (res, err) => next(err),
 *   closed: () => {}
 * })
 * ```
 */
export function holdOutput (res: ServerResponse, task: OutputTask): void {
  const hooked = res as Hooked
  hooked[kHold] = new HeldOutput(res, task)
  hooked.writeHead = heldWriteHead as ServerResponse['writeHead']
  hooked.write = heldWrite as ServerResponse['write']
  hooked.end = heldEnd as ServerResponse['end']
  hooked.flushHeaders = heldFlushHeaders
  hooked.on('close', onClose)
}

// One set of functions for every response: they find the request's hold through `this`, so
// hooking a response allocates no closures.

function heldWriteHead (this: Hooked, ...args: unknown[]): unknown {
  const hold = this[kHold]!
  if (hold.phase === Phase.Released || hold.phase === Phase.Failed) return Reflect.apply(hold.writeHead, this, args)
  hold.add(this, Kind.WriteHead, args)
  return this
}

function heldWrite (this: Hooked, ...args: unknown[]): boolean {
  const hold = this[kHold]!
  if (hold.phase === Phase.Released) return Reflect.apply(hold.write, this, args) as boolean
  if (hold.phase === Phase.Failed) return false
  hold.add(this, Kind.Write, args)
  hold.owesDrain = true
  return false
}

function heldEnd (this: Hooked, ...args: unknown[]): unknown {
  const hold = this[kHold]!
  if (hold.phase === Phase.Released || hold.phase === Phase.Failed) return Reflect.apply(hold.end, this, args)
  hold.add(this, Kind.End, args)
  return this
}

function heldFlushHeaders (this: Hooked): void {
  const hold = this[kHold]!
  if (hold.phase === Phase.Released || hold.phase === Phase.Failed) {
    Reflect.apply(hold.flushHeaders, this, [])
    return
  }
  hold.add(this, Kind.FlushHeaders, [])
}

function onClose (this: Hooked): void {
  const hold = this[kHold]
  if (hold !== undefined) hold.task.closed(this, hold.phase === Phase.Holding)
}

/**
 * A held `writeHead(status, [message], headers)` replaces headers of the same name, which for
 * Set-Cookie would drop the cookie set while holding: merge them instead.
 */
function mergeSetCookie (res: ServerResponse, args: unknown[]): void {
  const headers = typeof args[1] === 'string' ? args[2] : args[1]
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return
  const ours = res.getHeader('set-cookie')
  if (ours === undefined) return
  const record = headers as Record<string, unknown>
  for (const name of Object.keys(record)) {
    if (name.toLowerCase() !== 'set-cookie') continue
    const theirs = record[name]
    record[name] = [...toList(ours), ...toList(theirs)]
  }
}

function toList (value: unknown): string[] {
  if (value === undefined || value === null) return []
  return Array.isArray(value) ? value.map(String) : [String(value)]
}
