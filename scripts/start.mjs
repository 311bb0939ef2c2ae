#!/usr/bin/env node
// `npm start`: the demo cluster on this machine. Prints the URL to open and the balancer's
// status page; Ctrl-C (or SIGTERM) stops every process it started and exits 0.
//
//   npm start                                  SQLite in .tether/demo/, balancer on :8080, admin on :9090
//   npm start -- --store redis://127.0.0.1:6379   (or REDIS_URL=redis://… npm start)
//   npm start -- --store postgres://postgres@127.0.0.1:5432/test   (schema "counter", created on first use)
//   npm start -- --store mysql://root@127.0.0.1:3306/test          (table counter_sessions)
//   npm start -- --store memcached://127.0.0.1:11211
//   npm start -- --port 0 --admin-port 0          any free ports
//   npm start -- --tls                            https and HTTP/2, self-signed certificate made by openssl
import { parseArgs } from 'node:util'
import { ClusterError, parsePort, startCluster } from './cluster.mjs'

const USAGE = 'usage: npm start -- [--store sqlite:<path>|redis://host:port|postgres://host/db|mysql://host/db|memcached://host:port] [--port N] [--admin-port N] [--node-ports A,B,C] [--data-dir DIR] [--tls]'

function fail (err) {
  process.stderr.write(`tether: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(err instanceof ClusterError ? err.exitCode : 1)
}

function options () {
  let values
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      allowPositionals: false,
      options: {
        store: { type: 'string' },
        port: { type: 'string' },
        'admin-port': { type: 'string' },
        'node-ports': { type: 'string' },
        'data-dir': { type: 'string' },
        tls: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    }).values
  } catch (err) {
    throw new ClusterError(`${err.message}; ${USAGE}`, 2)
  }
  if (values.help) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  const store = values.store ?? (process.env.REDIS_URL || undefined)
  return {
    store,
    storeSource: values.store !== undefined ? '--store' : 'REDIS_URL',
    port: values.port === undefined ? 8080 : parsePort(values.port, '--port'),
    adminPort: values['admin-port'] === undefined ? 9090 : parsePort(values['admin-port'], '--admin-port'),
    nodePorts: values['node-ports'] === undefined ? undefined : values['node-ports'].split(',').map((p) => parsePort(p.trim(), '--node-ports')),
    dataDir: values['data-dir'],
    tls: values.tls === true
  }
}

let cluster
try {
  cluster = await startCluster(options())
} catch (err) {
  fail(err)
}

const lines = [
  'Tether demo cluster is up.',
  `  open    ${cluster.url}${cluster.url.startsWith('https:') ? '  (self-signed certificate: accept it in the browser once)' : ''}`,
  `  status  ${cluster.statusUrl}`,
  `  store   ${cluster.store.replace(/\/\/[^@/]*@/, '//')}`,
  ...cluster.nodes.map((n) => `  ${n.name}   ${n.url}  pid ${n.pid}`),
  'Ctrl-C stops the cluster.'
]
process.stdout.write(lines.join('\n') + '\n')

let stopping = false
async function shutdown (signal) {
  if (stopping) return
  stopping = true
  process.stdout.write(`\n${signal}: stopping the cluster…\n`)
  await cluster.stop()
  process.stdout.write('stopped.\n')
  process.exit(0)
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => { shutdown(signal) })
