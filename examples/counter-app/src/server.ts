#!/usr/bin/env node
/**
 * The counter-app process: `node dist/server.js [--port N] [--node-name NAME] [--store URL]`.
 * A start-up failure prints one line on stderr and exits non-zero; SIGTERM and SIGINT close
 * the server (in-flight requests finish, answered with `Connection: close`) and exit 0; with
 * SHUTDOWN_DELAY=ms, `/health` answers 503 for that long first while the node keeps serving. With EXIT_WITH_STDIN=1 it also stops when
 * its stdin reaches end of file (its supervisor went away).
 */
import { buildApp, randomSecret } from './app.js'
import { parseConfig } from './config.js'
import { CounterAppError } from './errors.js'
import { describeStore, openStore } from './stores.js'

async function main (): Promise<void> {
  const config = parseConfig(process.argv.slice(2), process.env)
  let secret = config.secret
  if (secret === undefined) {
    secret = randomSecret()
    process.stderr.write('counter-app: SESSION_SECRET is not set; using a random secret, so sessions end when this process does and other nodes reject its cookies\n')
  }
  const store = openStore(config.store)
  let stopping = false
  const app = await buildApp({ store, storeName: describeStore(config.store), nodeName: config.nodeName, secret, trustProxy: config.trustProxy, logLevel: config.logLevel, stopping: () => stopping })
  // While stopping, every answer (the requests in flight included) says Connection: close, so
  // each keep-alive connection ends with its last response: a proxy's pooled connection does
  // not linger idle into the drain, or get a request the closing server would refuse.
  app.addHook('onSend', async (_req, reply) => { if (stopping) reply.header('connection', 'close') })
  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    await app.close().catch(() => {})
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'EADDRINUSE' ? 'is already in use' : code === 'EACCES' ? 'is not permitted' : `cannot be bound (${(err as Error).message})`
    throw new CounterAppError('COUNTER_ERR_LISTEN', `port ${config.port} on ${config.host} ${why}`, { cause: err })
  }
  const stop = (): void => {
    if (stopping) return
    stopping = true
    // /health now answers 503; the port stays open SHUTDOWN_DELAY ms more, until the balancer's
    // checks have taken the node out, so that no request meets a port that just closed.
    setTimeout(() => { app.close().then(() => process.exit(0), () => process.exit(1)) }, config.shutdownDelay)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // Under a supervisor (npm start), stdin is a pipe from it: when the supervisor dies, even by
  // SIGKILL, the pipe closes and this node follows instead of lingering as an orphan.
  if (process.env.EXIT_WITH_STDIN === '1') {
    process.stdin.on('end', stop).on('close', stop).on('error', stop).resume()
  }
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`counter-app: ${message}\n`)
  // The session options are validated by the middleware (a short secret, say): those are
  // configuration mistakes too.
  const code = (err as { code?: unknown }).code
  const config = code === 'TETHER_ERR_SECRET_TOO_SHORT' || code === 'TETHER_ERR_INVALID_OPTION'
  process.exit(err instanceof CounterAppError ? err.exitCode : config ? 2 : 1)
})
