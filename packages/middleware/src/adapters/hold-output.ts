/**
 * Holding back a Node response until some work has finished: the way express-session and
 * compression hook `writeHead`/`write`/`end`, made strict enough that the work completes before
 * the status line and headers leave, for streaming responses too.
 *
 * The first output call (writeHead, write or end; flushHeaders goes through writeHead) starts
 * the work and is queued with everything after it. When the work resolves, the queue is replayed in order through the
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
const enum Kind { WriteHead, Write, End }

type Method = (...args: unknown[]) => unknown
interface Held { readonly kind: Kind, readonly args: unknown[] }

class HeldOutput {
  phase = Phase.Open
  queue: Held[] = []
  /** A write was answered `false` while held: that writer waits for a 'drain'. */
  owesDrain = false
  readonly #res: ServerResponse
  readonly #task: OutputTask
  readonly #writeHead: Method
  readonly #write: Method
  readonly #end: Method

  constructor (res: ServerResponse, task: OutputTask) {
    this.#res = res
    this.#task = task
    this.#writeHead = res.writeHead as Method
    this.#write = res.write as Method
    this.#end = res.end as Method
  }

  writeHead (args: unknown[]): unknown {
    if (this.phase === Phase.Released || this.phase === Phase.Failed) return Reflect.apply(this.#writeHead, this.#res, args)
    this.#add(Kind.WriteHead, args)
    return this.#res
  }

  write (args: unknown[]): boolean {
    if (this.phase === Phase.Released) return Reflect.apply(this.#write, this.#res, args) as boolean
    // Failed: these are the dropped handler's late chunks; the error response uses end().
    if (this.phase === Phase.Failed) return false
    this.#add(Kind.Write, args)
    this.owesDrain = true
    return false
  }

  end (args: unknown[]): unknown {
    if (this.phase === Phase.Released || this.phase === Phase.Failed) return Reflect.apply(this.#end, this.#res, args)
    this.#add(Kind.End, args)
    return this.#res
  }

  closed (): void {
    this.#task.closed(this.#res, this.phase === Phase.Holding)
  }

  #add (kind: Kind, args: unknown[]): void {
    this.queue.push({ kind, args })
    if (this.phase !== Phase.Open) return
    this.phase = Phase.Holding
    this.#task.beforeOutput(this.#res).then(() => this.#release(), (err: unknown) => this.#fail(err))
  }

  #release (): void {
    this.phase = Phase.Released
    const res = this.#res
    const queue = this.queue
    this.queue = []
    for (const call of queue) {
      if (call.kind === Kind.WriteHead) mergeSetCookie(res, call.args)
      Reflect.apply(call.kind === Kind.WriteHead ? this.#writeHead : call.kind === Kind.Write ? this.#write : this.#end, res, call.args)
    }
    // Our `false` made a writer wait; if the real stream is not itself backed up, no 'drain'
    // would ever come, so we owe it one.
    if (this.owesDrain && !res.writableEnded && !res.writableNeedDrain) res.emit('drain')
  }

  #fail (err: unknown): void {
    // Nothing held is sent: the response becomes the error. Writes still arriving come from the
    // handler whose output was dropped and are dropped too; end() and writeHead() pass, since
    // that is how error handlers (finalhandler, res.send) answer.
    this.phase = Phase.Failed
    this.queue = []
    this.#task.failed(this.#res, err)
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
  const hold = new HeldOutput(res, task)
  // Own properties, like express-session's and compression's wrappers, because Express swaps
  // the response's prototype when a sub-app runs. The wrappers are shared functions that find
  // their HeldOutput through `this`: no closures per response, and the same property order
  // every time, so V8 reuses one hidden-class transition chain. flushHeaders() is not hooked:
  // it sends its headers through writeHead(), which is.
  ;(res as Hooked)[kHold] = hold
  res.writeHead = heldWriteHead as unknown as ServerResponse['writeHead']
  res.write = heldWrite as unknown as ServerResponse['write']
  res.end = heldEnd as unknown as ServerResponse['end']
  res.once('close', onClose)
}

const kHold = Symbol('tether.holdOutput')
type Hooked = ServerResponse & { [kHold]: HeldOutput }

function heldWriteHead (this: Hooked, ...args: unknown[]): unknown { return this[kHold].writeHead(args) }
function heldWrite (this: Hooked, ...args: unknown[]): boolean { return this[kHold].write(args) }
function heldEnd (this: Hooked, ...args: unknown[]): unknown { return this[kHold].end(args) }
function onClose (this: Hooked): void { this[kHold].closed() }

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
