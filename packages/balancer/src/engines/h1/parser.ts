/**
 * A strict, incremental HTTP/1.1 response parser for the h1 engine. It reads only what the
 * framing needs (status, Content-Length, Transfer-Encoding, Connection, Keep-Alive) and hands
 * body bytes on as zero-copy subarrays. It does no I/O and can be fed any split of the bytes.
 *
 * Strict where framing is at stake, as a proxy must be (RFC 9112): obsolete line folding, bare
 * LF, malformed or conflicting Content-Length, oversized heads and chunk lines are errors, and
 * a Transfer-Encoding response is never reused (its Content-Length is ignored and dropped).
 * Header names and values are not re-validated here: Node's `writeHead` rejects invalid ones
 * before anything reaches the client.
 */

/** Receives what the parser finds. */
export interface ParserHandler {
  /** The final (non-1xx) response head. `headers` are flat `[name, value, …]` as received. */
  onHead (status: number, reason: string, headers: string[]): void
  onBody (chunk: Buffer): void
  onComplete (): void
}

/** Largest response head (and trailer section) accepted. */
export const MAX_HEAD_BYTES = 64 * 1024
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

/** Parse a Content-Length value ("5", or "5, 5" as some servers fold duplicates); -1 when invalid. */
function parseContentLength (value: string): number {
  let result = -1
  for (const part of value.split(',')) {
    const text = part.trim()
    if (text.length === 0 || text.length > 15) return -1
    let n = 0
    for (let i = 0; i < text.length; i++) {
      const d = text.charCodeAt(i) - 48
      if (d < 0 || d > 9) return -1
      n = n * 10 + d
    }
    if (result !== -1 && result !== n) return -1
    result = n
  }
  return result
}

function lowerIs (name: string, lower: string): boolean {
  if (name.length !== lower.length) return false
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
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
  /** Whether the connection may carry another request after this response. */
  keepAlive = true
  /** The server's Keep-Alive timeout hint (ms), or -1. */
  keepAliveHint = -1
  /** The status of the final response head, once parsed. */
  status = 0
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
    this.status = 0
    this.error = ''
    this.started = false
  }

  get complete (): boolean { return this.#state === COMPLETE }
  get upgraded (): boolean { return this.#state === UPGRADED }
  get failed (): boolean { return this.#state === FAILED }
  /** Head received and the body is delimited by the connection closing. */
  get readsUntilClose (): boolean { return this.#state === BODY_CLOSE }

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
      return this.#parseHead(data.toString('latin1', from, end + 2)) ? end + 4 : -1
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
    return this.#parseHead(buf.toString('latin1', 0, end + 2)) ? from + end + 4 - held.length : -1
  }

  /** Parse a head (status line and fields, each ending in CRLF). Returns false on failure. */
  #parseHead (head: string): boolean {
    if (!head.startsWith('HTTP/1.') || head.length < 14) { this.#fail('invalid status line', 0); return false }
    const minor = head.charCodeAt(7)
    const d0 = head.charCodeAt(9) - 48
    const d1 = head.charCodeAt(10) - 48
    const d2 = head.charCodeAt(11) - 48
    const after = head.charCodeAt(12)
    if ((minor !== 48 && minor !== 49) || head.charCodeAt(8) !== 32 || d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9 || (after !== 32 && after !== 13)) {
      this.#fail('invalid status line', 0)
      return false
    }
    const status = d0 * 100 + d1 * 10 + d2
    const lineEnd = head.indexOf('\r\n')
    if (head.indexOf('\n') !== lineEnd + 1) { this.#fail('bare LF in status line', 0); return false }
    const reason = after === 32 ? head.slice(13, lineEnd) : ''

    const headers: string[] = []
    let contentLength = -1
    let transferEncoding: string | undefined
    let keepAlive = minor === 49 // HTTP/1.1 defaults to persistent, 1.0 to close
    let pos = lineEnd + 2
    while (pos < head.length) {
      const eol = head.indexOf('\r\n', pos)
      const first = head.charCodeAt(pos)
      if (first === 32 || first === 9) { this.#fail('obsolete line folding', 0); return false }
      if (head.indexOf('\n', pos) !== eol + 1) { this.#fail('bare LF in header', 0); return false }
      const colon = head.indexOf(':', pos)
      if (colon <= pos || colon > eol) { this.#fail('invalid header line', 0); return false }
      const name = head.slice(pos, colon)
      let vs = colon + 1
      let ve = eol
      while (vs < ve && (head.charCodeAt(vs) === 32 || head.charCodeAt(vs) === 9)) vs++
      while (ve > vs && (head.charCodeAt(ve - 1) === 32 || head.charCodeAt(ve - 1) === 9)) ve--
      const value = head.slice(vs, ve)
      switch (name.length) {
        case 10:
          if (lowerIs(name, 'connection')) {
            const v = value.toLowerCase()
            if (v.includes('close')) keepAlive = false
            else if (v.includes('keep-alive')) keepAlive = true
          } else if (lowerIs(name, 'keep-alive')) {
            const at = value.indexOf('timeout=')
            if (at !== -1) {
              const seconds = parseInt(value.slice(at + 8), 10)
              if (seconds > 0) this.keepAliveHint = seconds * 1000
            }
          }
          break
        case 14:
          if (lowerIs(name, 'content-length')) {
            const n = parseContentLength(value)
            if (n === -1 || (contentLength !== -1 && contentLength !== n)) { this.#fail('invalid Content-Length', 0); return false }
            contentLength = n
          }
          break
        case 17:
          if (lowerIs(name, 'transfer-encoding')) transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
          break
      }
      headers.push(name, value)
      pos = eol + 2
    }

    if (status < 200) {
      if (status === 101 && this.#upgrade) {
        this.status = 101
        this.keepAlive = false
        this.#state = UPGRADED
        this.handler.onHead(status, reason, headers)
        return true
      }
      if (status === 101) { this.#fail('unexpected 101 response', 0); return false }
      // 1xx interim responses (100 Continue, 103 Early Hints): skip, the final head follows.
      this.#state = HEAD
      return true
    }

    this.status = status
    this.keepAlive = keepAlive
    if (this.#noBody || status === 204 || status === 304) {
      this.#state = COMPLETE
    } else if (transferEncoding !== undefined) {
      // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length, and then the connection closes.
      if (contentLength !== -1) this.keepAlive = false
      const codings = transferEncoding.toLowerCase()
      if (/(?:^|,)\s*chunked\s*$/.test(codings)) {
        this.#state = CHUNK_SIZE
        this.#remaining = 0
        this.#sizeDigits = 0
        this.#lineBytes = 0
      } else {
        this.#state = BODY_CLOSE
        this.keepAlive = false
      }
    } else if (contentLength !== -1) {
      this.#remaining = contentLength
      this.#state = contentLength === 0 ? COMPLETE : BODY_LENGTH
    } else {
      this.#state = BODY_CLOSE
      this.keepAlive = false
    }
    this.handler.onHead(status, reason, headers)
    if (this.#state === COMPLETE) this.handler.onComplete()
    return true
  }
}
