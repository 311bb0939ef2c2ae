// A small HTTP client that does not pool connections unless asked, raw TCP exchanges, and
// polling: what the balancer's tests send and wait with.
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http'
import { connect, type Socket } from 'node:net'

/** A response, fully read. */
export interface Response {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly body: string
}

/** Options for {@link send}. */
export interface SendOptions {
  method?: string
  headers?: Record<string, string | string[]>
  body?: string | Buffer
  agent?: Agent
  timeoutMs?: number
}

/** One HTTP request; a new connection unless an agent is given. */
export function send (url: string, options: SendOptions = {}): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`request to ${url} timed out`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

export const get = (url: string, headers?: Record<string, string | string[]>): Promise<Response> => send(url, headers === undefined ? {} : { headers })

/** Parse JSON from a response body (the fixture answers JSON). */
export function json<T = Record<string, unknown>> (res: Response): T {
  return JSON.parse(res.body) as T
}

/** What the fixture reports about the request it received. */
export interface Seen {
  name: string
  port: number
  method: string
  url: string
  headers: Record<string, string | undefined>
  rawHeaders: string[]
  body?: string
  bodyLength?: number
}

/** The sticky cookie's `name=value` from a response's Set-Cookie, if it set one. */
export function stickyCookie (res: Response, name = 'tether_node'): string | undefined {
  const list = res.headers['set-cookie'] ?? []
  const found = list.find((c) => c.startsWith(`${name}=`))
  return found?.split(';')[0]
}

/** Write raw bytes on a new TCP connection and collect everything until the server closes. */
export function rawExchange (port: number, write: (socket: Socket) => void, timeoutMs = 5000): Promise<{ data: string, closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('raw exchange timed out')) }, timeoutMs)
    socket.on('connect', () => write(socket))
    socket.on('data', (c: Buffer) => { data += c.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve({ data, closedAfterMs: Date.now() - started }) })
  })
}

/** Wait until `check` returns true, polling; fails after `timeoutMs`. */
export async function waitFor (check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** The names of the nodes that served `count` sequential GETs of `url` (or the status when not 200). */
export async function servedBy (url: string, count: number): Promise<string[]> {
  const names: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await get(`${url}/`)
    names.push(res.status === 200 ? json<Seen>(res).name : `status ${res.status}`)
  }
  return names
}

/**
 * A raw keep-alive connection (opened by `open`: TCP, or TLS with `ready` = 'secureConnect')
 * that reads whole responses (by content-length), and records how it ended: 'end' (a clean
 * FIN) or the error code (a reset).
 */
export function keepAliveSocket (open: () => Socket, ready = 'connect'): Promise<{ socket: Socket, request: (path: string) => Promise<string>, ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = open()
    let buffered = ''
    let waiter: ((head: string) => void) | null = null
    const ended = new Promise<string>((resolve) => {
      socket.once('end', () => resolve('end'))
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    })
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1')
      const headEnd = buffered.indexOf('\r\n\r\n')
      if (headEnd < 0 || waiter === null) return
      const length = Number(/content-length: *(\d+)/i.exec(buffered.slice(0, headEnd))?.[1] ?? 0)
      if (buffered.length < headEnd + 4 + length) return
      const response = buffered.slice(0, headEnd + 4 + length)
      buffered = buffered.slice(headEnd + 4 + length)
      const w = waiter
      waiter = null
      w(response)
    })
    const request = (path: string): Promise<string> => new Promise((resolve, reject) => {
      waiter = resolve
      ended.then((how) => reject(new Error(`connection ended (${how}) before a response`)), () => {})
      socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: keep-alive\r\n\r\n`)
    })
    socket.once(ready, () => resolve({ socket, request, ended }))
    socket.once('error', reject)
  })
}
