/**
 * Steady load for the chaos suite: concurrent clients, each with its own cookie jar (session
 * cookie and sticky cookie) and keep-alive connection, alternating an idempotent read
 * (`GET /api/state`) and a write (`POST /api/visit`, one increment). Every request is recorded
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

  /** One request; never throws. */
  send (method: string, path: string, timeoutMs = 30_000): Promise<{ status: number, count: number | null }> {
    return new Promise((resolve) => {
      const headers: Record<string, string> = {}
      if (this.jar.size > 0) headers.cookie = this.cookie()
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
          if (res.statusCode === 200) {
            try { count = (JSON.parse(body) as { count?: number }).count ?? null } catch { /* not JSON */ }
          }
          resolve({ status: res.statusCode ?? 0, count })
        })
        res.on('error', () => resolve({ status: 0, count: null }))
      })
      req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')))
      req.on('error', () => resolve({ status: 0, count: null }))
      req.end()
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

  constructor (base: string, clients: number, pauseMs = 20) {
    this.clients = Array.from({ length: clients }, (_, i) => new Client(i, base))
    this.#loops = this.clients.map(async (c) => {
      let n = 0
      while (this.#running) {
        const kind = n++ % 2 === 0 ? 'write' : 'read'
        const start = performance.now()
        const { status, count } = await c.send(kind === 'write' ? 'POST' : 'GET', kind === 'write' ? '/api/visit' : '/api/state')
        const end = performance.now()
        this.samples.push({ client: c.id, kind, start, end, status, count })
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
