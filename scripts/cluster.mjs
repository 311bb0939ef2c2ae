// The demo cluster on this machine: a shared session store, three counter-app processes and
// the balancer in front of them. `npm start` (scripts/start.mjs) and the browser test both run
// it through startCluster(), so the test exercises exactly what a user starts.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import net from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const SERVER = join(root, 'examples/counter-app/dist/server.js')
const NODE_NAMES = ['node1', 'node2', 'node3']
const HOST = '127.0.0.1'

/** A failure the user can fix; `message` is the one line to print, `exitCode` the status. */
export class ClusterError extends Error {
  constructor (message, exitCode = 1, options) {
    super(message, options)
    this.name = 'ClusterError'
    this.exitCode = exitCode
  }
}

/**
 * Check a port given by the user: an integer from 0 to 65535 (0: any free port).
 * @param {string} value @param {string} flag
 */
export function parsePort (value, flag) {
  const port = /^\d+$/.test(value) ? Number(value) : Number.NaN
  if (!Number.isInteger(port) || port > 65_535) throw new ClusterError(`${flag} must be an integer from 0 to 65535; got ${JSON.stringify(value)}`, 2)
  return port
}

/**
 * Which shared store the nodes use: an explicit `sqlite:<path>`, `redis://…`, `postgres://…`,
 * `mysql://…` or `memcached://…` URL, else a SQLite file in `dataDir`.
 * @param {string | undefined} url @param {string} dataDir @param {string} source
 */
export function resolveStore (url, dataDir, source) {
  if (url === undefined) return `sqlite:${join(resolve(dataDir), 'sessions.db')}`
  if (url === 'memory:') throw new ClusterError(`${source} memory: keeps sessions inside one process; the three nodes need a shared store: sqlite:<path> or redis://host:port`, 2)
  if (/^sqlite:.+/.test(url)) return `sqlite:${resolve(url.slice('sqlite:'.length))}`
  if (/^rediss?:\/\/[^/\s]+/.test(url)) {
    if (!URL.canParse(url)) { throw new ClusterError(`${source} is not a valid Redis URL: ${JSON.stringify(url)}`, 2) }
    return url
  }
  if (/^(postgres(ql)?|mysql):\/\/[^/\s]+/.test(url)) {
    if (!URL.canParse(url)) { throw new ClusterError(`${source} is not a valid URL: ${JSON.stringify(url)}`, 2) }
    return url
  }
  if (/^memcached:\/\/[^/\s]+$/.test(url)) return url
  throw new ClusterError(`${source} must be sqlite:<path>, redis://host:port, postgres://host/db, mysql://host/db or memcached://host:port; got ${JSON.stringify(url)}`, 2)
}

/** Fail now, with the flag's name, if a port the user chose is taken. */
async function probePort (port, flag) {
  if (port === 0) return
  await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', (err) => {
      reject(err.code === 'EADDRINUSE'
        ? new ClusterError(`port ${port} (${flag}) is already in use; pick another with ${flag} N, or 0 for any free port`)
        : new ClusterError(`port ${port} (${flag}) cannot be bound: ${err.message}`))
    })
    srv.listen(port, HOST, () => srv.close(resolve))
  })
}

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** A Redis URL must answer before three nodes are pointed at it. */
async function checkRedis (url) {
  const { Redis } = await import('ioredis')
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 2000, commandTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  // ioredis reports the socket's own error (ECONNREFUSED …) on the event, not on the promise.
  let cause
  client.on('error', (err) => { cause ??= err })
  try {
    await client.connect()
    await client.ping()
  } catch (err) {
    throw new ClusterError(`cannot reach Redis at ${redact(url)}: ${(cause ?? err).message}`)
  } finally {
    client.disconnect()
  }
}

/** A PostgreSQL or MySQL URL must answer before three nodes are pointed at it. */
async function checkSql (url) {
  const require = createRequire(import.meta.url)
  try {
    if (url.startsWith('mysql')) {
      const conn = await require('mysql2/promise').createConnection({ uri: url, connectTimeout: 2000 })
      try { await conn.query('SELECT 1') } finally { await conn.end() }
    } else {
      const { Client } = require('pg')
      const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 })
      await client.connect()
      try { await client.query('SELECT 1') } finally { await client.end() }
    }
  } catch (err) {
    throw new ClusterError(`cannot reach the database at ${redact(url)}: ${err.message}`)
  }
}

function redact (url) {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`
  } catch { return url.slice(0, url.indexOf(':')) }
}

function get (url, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

/** Stop a node's whole process group: SIGTERM, then SIGKILL past the bound. */
async function stopGroup (node, graceMs) {
  node.stopping = true
  if (node.exited) return
  const signal = (sig) => { try { process.kill(-node.pid, sig) } catch {} }
  signal('SIGTERM')
  const deadline = Date.now() + graceMs
  while (!node.exited && Date.now() < deadline) await sleep(20)
  if (!node.exited) {
    signal('SIGKILL')
    const hard = Date.now() + 2000
    while (!node.exited && Date.now() < hard) await sleep(20)
  }
}

/**
 * Start the cluster. Every process it starts is stopped by `stop()`, and by itself if the
 * start fails halfway.
 *
 * With `tls`, the balancer serves https (and HTTP/2) with a self-signed certificate made by
 * openssl in the data directory (kept, so that a browser's exception survives a restart).
 * @param {{ store?: string, storeSource?: string, port?: number, adminPort?: number, nodePorts?: number[], dataDir?: string, tls?: boolean, log?: (line: string) => void }} options
 */
export async function startCluster (options = {}) {
  const log = options.log ?? ((line) => process.stderr.write(line + '\n'))
  const dataDir = options.dataDir ?? join(root, '.tether', 'demo')
  const store = resolveStore(options.store, dataDir, options.storeSource ?? '--store')
  const port = options.port ?? 8080
  const adminPort = options.adminPort ?? 9090
  const nodePorts = options.nodePorts ?? [0, 0, 0]
  if (nodePorts.length !== NODE_NAMES.length) throw new ClusterError(`--node-ports needs ${NODE_NAMES.length} ports, comma-separated; got ${nodePorts.length}`, 2)
  const chosen = [[port, '--port'], [adminPort, '--admin-port'], ...nodePorts.map((p) => [p, '--node-ports'])].filter(([p]) => p !== 0)
  const seen = new Map()
  for (const [p, flag] of chosen) {
    if (seen.has(p)) throw new ClusterError(`port ${p} is given twice (${seen.get(p)} and ${flag})`, 2)
    seen.set(p, flag)
  }
  for (const [p, flag] of chosen) await probePort(p, flag)
  if (store.startsWith('sqlite:')) mkdirSync(dirname(store.slice('sqlite:'.length)), { recursive: true })
  else if (store.startsWith('redis')) await checkRedis(store)
  else await checkSql(store)
  const secrets = loadSecrets(dataDir)
  const tls = options.tls === true ? demoCertificate(dataDir) : undefined

  const nodes = []
  let balancer
  const stop = async () => {
    const closing = balancer
    balancer = undefined
    if (closing !== undefined) {
      await Promise.race([closing.close().catch(() => {}), sleep(5000)])
    }
    await Promise.all(nodes.map((n) => stopGroup(n, 5000)))
  }

  try {
    for (const [i, name] of NODE_NAMES.entries()) {
      const nodePort = nodePorts[i] === 0 ? await freePort() : nodePorts[i]
      nodes.push(spawnNode(name, nodePort, store, secrets.session, log))
    }
    await Promise.all(nodes.map((n) => n.ready))
    const { createBalancer } = await importBalancer()
    balancer = createBalancer({
      listen: tls === undefined ? `${HOST}:${port}` : { port: `${HOST}:${port}`, tls },
      algorithm: 'weighted-round-robin',
      upstreams: nodes.map((n) => ({ url: n.url, name: n.name })),
      sticky: { secret: secrets.sticky },
      healthCheck: { path: '/health', interval: '1s', timeout: '500ms', rise: 2, fall: 2 },
      admin: { listen: `${HOST}:${adminPort}` },
      log: { level: 'warn' }
    })
    let bound
    try {
      bound = await balancer.listen()
    } catch (err) {
      throw new ClusterError(`the balancer did not start: ${err.message}`, 1, { cause: err })
    }
    for (const n of nodes) n.live()
    const url = `${tls === undefined ? 'http' : 'https'}://${tls === undefined ? HOST : 'localhost'}:${bound.port}/`
    const statusUrl = `http://${HOST}:${bound.adminPort}/`
    return {
      url,
      statusUrl,
      adminUrl: `http://${HOST}:${bound.adminPort}`,
      store,
      nodes: nodes.map(({ name, port, pid, url }) => ({ name, port, pid, url })),
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1, made once by openssl and
 * kept in the data directory.
 */
function demoCertificate (dataDir) {
  const cert = join(dataDir, 'demo-cert.pem')
  const key = join(dataDir, 'demo-key.pem')
  if (existsSync(cert) && existsSync(key)) return { cert, key }
  mkdirSync(dataDir, { recursive: true })
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '365', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
    ], { stdio: 'ignore' })
  } catch (err) {
    throw new ClusterError(`--tls needs openssl to make the demo certificate (apt-get install openssl): ${err.message}`, 1, { cause: err })
  }
  return { cert, key }
}

/**
 * The cookie secrets, kept in the data directory: sessions are in a persistent store, so a
 * restarted cluster should still accept the cookies the browser holds.
 */
function loadSecrets (dataDir) {
  const file = join(dataDir, 'secrets.json')
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    if (typeof saved.session === 'string' && saved.session.length >= 32 && typeof saved.sticky === 'string' && saved.sticky.length >= 32) return saved
  } catch (err) {
    if (err.code !== 'ENOENT' && !(err instanceof SyntaxError)) throw new ClusterError(`cannot read ${file}: ${err.message}`)
  }
  const secrets = { session: randomBytes(32).toString('base64url'), sticky: randomBytes(32).toString('base64url') }
  try {
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(file, JSON.stringify(secrets) + '\n', { mode: 0o600 })
  } catch (err) {
    throw new ClusterError(`cannot write ${file}: ${err.message}`)
  }
  return secrets
}

async function importBalancer () {
  let mod
  try {
    mod = await import('@tether/balancer')
  } catch (err) {
    throw new ClusterError(`cannot load @tether/balancer (run npm run build first): ${err.message}`, 1, { cause: err })
  }
  if (typeof mod.createBalancer !== 'function') throw new ClusterError('@tether/balancer does not export createBalancer (run npm run build first)')
  return mod
}

function spawnNode (name, port, store, secret, log) {
  // Own process group (detached), so stopping it takes any children it has, and a terminal's
  // Ctrl-C reaches only the supervisor, which then stops the nodes in order. stdin is a pipe
  // from us: if we die, it closes and the node exits too (EXIT_WITH_STDIN).
  const child = spawn(process.execPath, [SERVER, '--port', String(port), '--host', HOST, '--node-name', name, '--store', store], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SESSION_SECRET: secret, LOG_LEVEL: 'warn', EXIT_WITH_STDIN: '1', TRUST_PROXY: '127.0.0.1,::1' }
  })
  const node = { name, port, pid: child.pid, url: `http://${HOST}:${port}`, child, exited: false, stopping: false, forward: false, live: undefined, lastLine: '', ready: undefined }
  // Until the whole cluster is up, a node's output is held back: if the start fails, the user
  // gets one line saying why, not every node's version of it.
  const held = []
  node.live = () => {
    node.forward = true
    for (const line of held.splice(0)) log(line)
  }
  const onLine = (line) => {
    if (line.trim() === '') return
    node.lastLine = line
    if (node.forward) log(`[${name}] ${line}`)
    else held.push(`[${name}] ${line}`)
  }
  createInterface({ input: child.stdout }).on('line', onLine)
  createInterface({ input: child.stderr }).on('line', onLine)
  child.stdin.on('error', () => {})
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    node.exited = true
    if (!node.stopping && node.forward) log(`[${name}] exited (${signal ?? `code ${code}`}), pid ${child.pid}`)
    resolve({ code, signal })
  }))
  node.ready = (async () => {
    const deadline = Date.now() + 20_000
    for (;;) {
      if (node.exited) {
        const { code, signal } = await exited
        const why = node.lastLine.replace(/^counter-app: /, '') || `exited with ${code ?? signal}`
        throw new ClusterError(`${name} did not start: ${why}`)
      }
      if (await get(`${node.url}/health`, 1000) === 200) return
      if (Date.now() > deadline) throw new ClusterError(`${name} did not answer on ${node.url}/health within 20 s`)
      await sleep(50)
    }
  })()
  node.ready.catch(() => {})
  return node
}
