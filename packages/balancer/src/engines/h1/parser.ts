/**
 * A strict, incremental HTTP/1.1 response parser for the h1 engine: the framing state machine
 * (Content-Length, chunked, close-delimited, no-body statuses, 1xx, 101), fed any split of the
 * bytes, handing body bytes on as zero-copy subarrays. It does no I/O. The head itself is read
 * by `head.ts`.
 *
 * Strict where framing is at stake, as a proxy must be (RFC 9112): bare LF, oversized heads and
 * chunk lines are errors, and a Transfer-Encoding response is never reused (its Content-Length
 * is ignored and dropped).
 *
 * One unit, a little over 300 lines: the framing states share one loop, its position and its
 * counters; split, one state machine would be spread over files.
 */
import { ResponseHead, parseHead } from './head.js'

/** Receives what the parser finds. */
export interface ParserHandler {
  /** The final (non-1xx) response head. `headers` are flat `[name, value, …]` as received. */
  onHead (status: number, reason: string, headers: string[]): void
  onBody (chunk: Buffer): void
  onComplete (): void
}

/** Largest response head (and trailer section) accepted. */
const MAX_HEAD_BYTES = 64 * 1024
const MAX_CHUNK_LINE = 4096

const HEAD = 0
const BODY_LENGTH = 1
const BODY_CLOSE = 2
const CHUNK_SIZE = 3
const CHUNK_EXT = 4
const CHUNK_SIZE_LF = 5
const CHUNK_DATA = 6
const CHUNK_DATA_CR = 7
const CHUNK_DATA_LF = 8
const TRAILER = 9
const TRAILER_LF = 10
const COMPLETE = 11
const UPGRADED = 12
const FAILED = 13

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1')

function hexValue (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 0x20
  if (l >= 97 && l <= 102) return l - 87
  return -1
}

/**
 * One parser per upstream connection, reset for each response with {@link ResponseParser.begin}.
 *
 * @example
 * ```ts
 * const parser = new ResponseParser({ onHead () {}, onBody (c) { console.log(String(c)) }, onComplete () {} })
 * parser.begin(false, false)
 * parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')) // logs "ok"
 * parser.complete // true
 * ```
 */
export class ResponseParser {
  handler: ParserHandler
  #state = COMPLETE
  #headBuf: Buffer | null = null
  #remaining = 0
  #lineBytes = 0
  #sizeDigits = 0
  #noBody = false
  #upgrade = false
  readonly #head = new ResponseHead()
  /** Whether the connection may carry another request after this response. */
  keepAlive = true
  /** The server's Keep-Alive timeout hint (ms), or -1. */
  keepAliveHint = -1
  /** Why parsing failed. */
  error = ''
  /** Whether any byte of the response has arrived. */
  started = false

  constructor (handler: ParserHandler) {
    this.handler = handler
  }

  /**
   * Expect a new response.
   * @param noBody the request was HEAD: no body whatever the headers say
   * @param upgrade the request asked for an upgrade: a 101 ends parsing (see `upgraded`)
   */
  begin (noBody: boolean, upgrade: boolean): void {
    this.#state = HEAD
    this.#headBuf = null
    this.#noBody = noBody
    this.#upgrade = upgrade
    this.keepAlive = true
    this.keepAliveHint = -1
    this.error = ''
    this.started = false
  }

  get complete (): boolean { return this.#state === COMPLETE }
  get upgraded (): boolean { return this.#state === UPGRADED }
  get failed (): boolean { return this.#state === FAILED }

  /**
   * Feed bytes. Returns how many were consumed: all of them, unless the response completed,
   * upgraded or failed part-way (then the caller inspects `complete`, `upgraded`, `failed`).
   */
  execute (data: Buffer): number {
    if (data.length > 0) this.started = true
    let i = 0
    const len = data.length
    while (i < len) {
      switch (this.#state) {
        case HEAD: {
          const next = this.#readHead(data, i)
          if (next < 0) return this.failed ? i : len
          i = next
          break
        }
        case BODY_LENGTH: {
          const n = Math.min(this.#remaining, len - i)
          this.#remaining -= n
          const chunk = i === 0 && n === len ? data : data.subarray(i, i + n)
          i += n
          if (this.#remaining === 0) this.#state = COMPLETE
          this.handler.onBody(chunk)
          if (this.#state === COMPLETE) { this.handler.onComplete(); return i }
          break
        }
        case BODY_CLOSE: {
          this.handler.onBody(i === 0 ? data : data.subarray(i))
          return len
        }
        case CHUNK_SIZE: {
          const c = data[i] as number
          const v = hexValue(c)
          if (v >= 0) {
            if (++this.#sizeDigits > 13) return this.#fail('chunk size too large', i)
            this.#remaining = this.#remaining * 16 + v
          } else if (this.#sizeDigits === 0) {
            return this.#fail('invalid chunk size', i)
          } else if (c === 13) {
            this.#state = CHUNK_SIZE_LF
          } else if (c === 59 /* ; */ || c === 32 || c === 9) {
            this.#state = CHUNK_EXT
          } else {
            return this.#fail('invalid chunk size', i)
          }
          this.#lineBytes++
          i++
          break
        }
        case CHUNK_EXT: {
          const c = data[i] as number
          if (c === 13) this.#state = CHUNK_SIZE_LF
          else if (c === 10 || c === 0) return this.#fail('invalid chunk extension', i)
          if (++this.#lineBytes > MAX_CHUNK_LINE) return this.#fail('chunk line too long', i)
          i++
          break
        }
        case CHUNK_SIZE_LF: {
          if (data[i] !== 10) return this.#fail('chunk size line not ended by CRLF', i)
          i++
          this.#lineBytes = 0
          if (this.#remaining === 0) {
            this.#state = TRAILER
          } else {
            this.#state = CHUNK_DATA
          }
          break
        }
        case CHUNK_DATA: {
          const n = Math.min(this.#remaining, len - i)
          this.#remaining -= n
          const chunk = data.subarray(i, i + n)
          i += n
          if (this.#remaining === 0) this.#state = CHUNK_DATA_CR
          this.handler.onBody(chunk)
          break
        }
        case CHUNK_DATA_CR:
          if (data[i] !== 13) return this.#fail('chunk data not followed by CRLF', i)
          this.#state = CHUNK_DATA_LF
          i++
          break
        case CHUNK_DATA_LF:
          if (data[i] !== 10) return this.#fail('chunk data not followed by CRLF', i)
          this.#state = CHUNK_SIZE
          this.#sizeDigits = 0
          this.#lineBytes = 0
          i++
          break
        case TRAILER: {
          // Trailer fields are read and dropped: Node would need them declared up front.
          const c = data[i] as number
          if (c === 13) this.#state = TRAILER_LF
          else if (c === 10) return this.#fail('bare LF in trailers', i)
          else if (++this.#lineBytes > MAX_HEAD_BYTES) return this.#fail('trailers too large', i)
          i++
          break
        }
        case TRAILER_LF: {
          if (data[i] !== 10) return this.#fail('trailer line not ended by CRLF', i)
          i++
          if (this.#lineBytes === 0) {
            this.#state = COMPLETE
            this.handler.onComplete()
            return i
          }
          this.#lineBytes = 0
          this.#state = TRAILER
          break
        }
        default:
          // COMPLETE, UPGRADED, FAILED: the caller decides what the remaining bytes mean.
          return i
      }
    }
    return len
  }

  /**
   * The upstream closed the connection. Completes a close-delimited body; otherwise the
   * response was cut short and this returns false.
   */
  finish (): boolean {
    if (this.#state === BODY_CLOSE) {
      this.#state = COMPLETE
      this.handler.onComplete()
      return true
    }
    return this.#state === COMPLETE
  }

  #fail (reason: string, at: number): number {
    this.#state = FAILED
    this.error = reason
    this.keepAlive = false
    return at
  }

  /** Returns the index in `data` after the head, or -1 when more bytes are needed or parsing failed. */
  #readHead (data: Buffer, from: number): number {
    const held = this.#headBuf
    if (held === null) {
      // Common case: the whole head is in this read; no copy.
      const end = data.indexOf(CRLFCRLF, from)
      if (end === -1) {
        if (data.length - from > MAX_HEAD_BYTES) { this.#fail('response head too large', from); return -1 }
        this.#headBuf = Buffer.from(data.subarray(from))
        return -1
      }
      if (end - from > MAX_HEAD_BYTES) { this.#fail('response head too large', from); return -1 }
      return this.#onHead(data.toString('latin1', from, end + 2)) ? end + 4 : -1
    }
    const buf = Buffer.concat([held, data.subarray(from)])
    // The terminator may straddle the two reads: start looking 3 bytes before the new ones.
    const end = buf.indexOf(CRLFCRLF, Math.max(0, held.length - 3))
    if (end === -1) {
      if (buf.length > MAX_HEAD_BYTES) { this.#fail('response head too large', from); return -1 }
      this.#headBuf = buf
      return -1
    }
    this.#headBuf = null
    if (end > MAX_HEAD_BYTES) { this.#fail('response head too large', from); return -1 }
    return this.#onHead(buf.toString('latin1', 0, end + 2)) ? from + end + 4 - held.length : -1
  }

  /** Act on a complete head: skip 1xx, end at an expected 101, else set up the body's framing. */
  #onHead (text: string): boolean {
    const head = this.#head
    const problem = parseHead(text, head)
    if (problem !== '') { this.#fail(problem, 0); return false }
    const status = head.status
    if (status < 200) {
      if (status === 101 && this.#upgrade) {
        this.keepAlive = false
        this.#state = UPGRADED
        this.handler.onHead(status, head.reason, head.headers)
        return true
      }
      if (status === 101) { this.#fail('unexpected 101 response', 0); return false }
      // 1xx interim responses (100 Continue, 103 Early Hints): skip, the final head follows.
      this.#state = HEAD
      return true
    }

    this.keepAlive = head.keepAlive
    this.keepAliveHint = head.keepAliveHint
    const transferEncoding = head.transferEncoding
    if (this.#noBody || status === 204 || status === 304) {
      this.#state = COMPLETE
    } else if (transferEncoding !== undefined) {
      // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length, and then the connection closes.
      if (head.contentLength !== -1) this.keepAlive = false
      if (/(?:^|,)\s*chunked\s*$/.test(transferEncoding.toLowerCase())) {
        this.#state = CHUNK_SIZE
        this.#remaining = 0
        this.#sizeDigits = 0
        this.#lineBytes = 0
      } else {
        this.#state = BODY_CLOSE
        this.keepAlive = false
      }
    } else if (head.contentLength !== -1) {
      this.#remaining = head.contentLength
      this.#state = head.contentLength === 0 ? COMPLETE : BODY_LENGTH
    } else {
      this.#state = BODY_CLOSE
      this.keepAlive = false
    }
    this.handler.onHead(status, head.reason, head.headers)
    if (this.#state === COMPLETE) this.handler.onComplete()
    return true
  }
}
