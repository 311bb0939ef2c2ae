/**
 * Steady load for the chaos suite: concurrent clients, each with its own cookie jar (session
 * cookie and sticky cookie) and keep-alive connection, alternating an idempotent read
 * (`GET /api/state`) and a write (`POST /api/visit`, one increment; or a slow upload to
 * `POST /api/upload`, which counts one too). Every request is recorded
 * with its start, end and outcome, so a scenario can measure what a fault cost.
 */
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'

/** One request as a client saw it. */
export interface Sample {
  readonly client: number
  readonly kind: 'read' | 'write'
  readonly start: number
  readonly end: number
  /** HTTP status, or 0 for a transport error (reset, timeout). */
  readonly status: number
  /** The session's count in the answer, when it came. */
  readonly count: number | null
  /** The node that answered (its name in the answer), when it came. */
  readonly node: string | null
}

/**
 * Writes as slow uploads (`POST /api/upload`): a body of `minBytes`–`maxBytes`, sent in
 * `chunkBytes` pieces with `gapMs` between them, so that uploads are in flight at any moment.
 */
export interface UploadShape {
  readonly minBytes: number
  readonly maxBytes: number
  readonly chunkBytes: number
  readonly gapMs: number
}

/** One client: a cookie jar and the writes it saw acknowledged. */
export class Client {
  readonly jar = new Map<string, string>()
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  acked = 0
  /** The highest count an answer showed: a later, lower one means the session was lost. */
  seen = 0
  lost = false

  constructor (readonly id: number, readonly base: string) {}

  cookie (): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  /** One request, with a body of `upload.bytes` sent slowly when given; never throws. */
  send (method: string, path: string, timeoutMs = 30_000, upload?: { bytes: number, shape: UploadShape }): Promise<{ status: number, count: number | null, node: string | null }> {
    return new Promise((resolve) => {
      const headers: Record<string, string> = {}
      if (this.jar.size > 0) headers.cookie = this.cookie()
      if (upload !== undefined) {
        headers['content-type'] = 'application/octet-stream'
        headers['content-length'] = String(upload.bytes)
      }
      const req = http.request(`${this.base}${path}`, { method, headers, agent: this.agent }, (res) => {
        for (const line of res.headers['set-cookie'] ?? []) {
          const pair = line.split(';')[0] ?? ''
          const at = pair.indexOf('=')
          if (at > 0) this.jar.set(pair.slice(0, at), pair.slice(at + 1))
        }
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => { body += d })
        res.on('end', () => {
          let count: number | null = null
          let node: string | null = null
          if (res.statusCode === 200) {
            try {
              const facts = JSON.parse(body) as { count?: number, node?: { name?: string } }
              count = facts.count ?? null
              node = facts.node?.name ?? null
            } catch { /* not JSON */ }
          }
          resolve({ status: res.statusCode ?? 0, count, node })
        })
        res.on('error', () => resolve({ status: 0, count: null, node: null }))
      })
      req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')))
      req.on('error', () => resolve({ status: 0, count: null, node: null }))
      if (upload === undefined) {
        req.end()
        return
      }
      void (async () => {
        const chunk = Buffer.alloc(upload.shape.chunkBytes, 0x61)
        for (let sent = 0; sent < upload.bytes && !req.destroyed; sent += chunk.length) {
          req.write(chunk.subarray(0, Math.min(chunk.length, upload.bytes - sent)))
          await sleep(upload.shape.gapMs)
        }
        req.end()
      })()
    })
  }

  close (): void { this.agent.destroy() }
}

/** Concurrent clients in a loop until `stop()`. */
export class Load {
  readonly samples: Sample[] = []
  readonly clients: Client[]
  #running = true
  readonly #loops: Array<Promise<void>>

  /** With `uploads`, every write is a slow upload of that shape instead of `POST /api/visit`. */
  constructor (base: string, clients: number, pauseMs = 20, uploads?: UploadShape) {
    this.clients = Array.from({ length: clients }, (_, i) => new Client(i, base))
    this.#loops = this.clients.map(async (c) => {
      let n = 0
      while (this.#running) {
        const kind = n++ % 2 === 0 ? 'write' : 'read'
        const start = performance.now()
        const upload = kind === 'write' && uploads !== undefined
          ? { bytes: uploads.minBytes + Math.floor(Math.random() * (uploads.maxBytes - uploads.minBytes + 1)), shape: uploads }
          : undefined
        const path = kind === 'read' ? '/api/state' : upload !== undefined ? '/api/upload' : '/api/visit'
        const { status, count, node } = await c.send(kind === 'write' ? 'POST' : 'GET', path, 30_000, upload)
        const end = performance.now()
        this.samples.push({ client: c.id, kind, start, end, status, count, node })
        if (count !== null) {
          if (count < c.seen) c.lost = true
          c.seen = Math.max(c.seen, count)
        }
        if (kind === 'write' && status === 200) c.acked++
        await sleep(pauseMs)
      }
    })
  }

  async stop (): Promise<void> {
    this.#running = false
    await Promise.all(this.#loops)
  }

  close (): void { for (const c of this.clients) c.close() }
}
