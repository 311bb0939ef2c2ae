/**
 * HTTP/1.1 wire details every engine (and the upgrade path) shares: how a head is written, how
 * much of a declined upgrade is kept, and the failures each engine raises the same way.
 */
import { UpstreamError } from './failure.js'
import type { UpstreamTarget } from './engine.js'

/** Largest body of a declined upgrade (an ordinary answer instead of 101) passed to the client. */
export const MAX_DECLINED_BODY = 64 * 1024

/**
 * A message head: the start line, `name: value` lines from a flat header list, `extra` lines
 * already serialised (each ending in CRLF), and the blank line.
 *
 * @example
 * ```ts
 * serializeHead('GET / HTTP/1.1', ['host', 'app'], 'connection: upgrade\r\n') // 'GET / HTTP/1.1\r\nhost: app\r\nconnection: upgrade\r\n\r\n'
 * ```
 */
export function serializeHead (startLine: string, headers: readonly string[], extra = ''): string {
  let head = `${startLine}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`
  return `${head}${extra}\r\n`
}

/** The framing lines an upgrade request adds to its headers. */
export function upgradeLines (protocol: string): string {
  return `connection: upgrade\r\nupgrade: ${protocol}\r\n`
}

/**
 * ASCII case-insensitive equality against a literal made of lower-case letters, digits and '-'
 * (characters whose 0x20 bit is set, so that OR-ing it in is the identity on them).
 *
 * @example
 * ```ts
 * lowerEquals('Content-Length', 'content-length') // true
 * ```
 */
export function lowerEquals (name: string, lower: string): boolean {
  if (name.length !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    // OR-ing 0x20 folds A-Z onto a-z; for the token characters a header name may hold it
    // produces a letter only from that letter's upper case, and '-' stays '-'.
    if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  }
  return true
}

/**
 * The body of a declined upgrade, kept up to {@link MAX_DECLINED_BODY}.
 *
 * @example
 * ```ts
 * const body = new DeclinedBody()
 * body.add(chunk)
 * if (body.tooLarge) sink.onError(declinedTooLarge(target)); else sink.onResponse(status, reason, headers, body.bytes())
 * ```
 */
export class DeclinedBody {
  readonly #chunks: Buffer[] = []
  #size = 0

  /** Keep a chunk; returns false once the body is over the limit (nothing more is kept). */
  add (chunk: Buffer): boolean {
    this.#size += chunk.length
    if (this.#size > MAX_DECLINED_BODY) return false
    this.#chunks.push(chunk)
    return true
  }

  get tooLarge (): boolean { return this.#size > MAX_DECLINED_BODY }

  bytes (): Buffer { return Buffer.concat(this.#chunks) }
}

/** A declined upgrade whose body is over the limit: refused as an invalid answer. */
export function declinedTooLarge (target: UpstreamTarget): UpstreamError {
  return new UpstreamError(`${target.name} declined the upgrade with a body too large`, 'protocol', 'response')
}

/** An attempt started on an engine that was closed: nothing was sent, as for a refused connect. */
export function engineClosed (): UpstreamError {
  return new UpstreamError('engine closed', 'connect', 'connect', 'ENGINE_CLOSED')
}

/** The client went away: the attempt stops, and the node is not blamed. */
export function clientAborted (what = 'client went away'): UpstreamError {
  return new UpstreamError(what, 'aborted', 'response')
}
