#!/usr/bin/env node
/**
 * The `tether-balancer` command. Exit status: 0 after a clean stop, 1 on a runtime failure
 * (such as a port in use), 2 on a configuration or usage error.
 */
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import type { Balancer } from './api.js'
import { createBalancer } from './balancer.js'
import type { BalancerConfig } from './config/types.js'
import { loadConfigFile } from './config/load.js'
import { resolveConfig } from './config/resolve.js'
import { TetherBalancerError, formatIssue } from './errors.js'
import { USAGE, mergeConfig, parseFlags, type CliOptions } from './cli/flags.js'
import { runStatus } from './cli/status.js'
import { runPrimary } from './cluster/primary.js'
import { runWorker } from './cluster/worker.js'

const EXIT_RUNTIME = 1
const EXIT_CONFIG = 2

function fail (err: unknown): never {
  if (err instanceof TetherBalancerError) {
    const lines = err.issues.length > 0 ? err.issues.map(formatIssue) : [err.message]
    for (const line of lines) process.stderr.write(`tether-balancer: ${line} [${err.code}]\n`)
    const config = err.code === 'TETHER_ERR_CONFIG_INVALID' || err.code === 'TETHER_ERR_CONFIG_FILE' || err.code === 'TETHER_ERR_CLI_USAGE'
    process.exit(config ? EXIT_CONFIG : EXIT_RUNTIME)
  }
  process.stderr.write(`tether-balancer: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(EXIT_RUNTIME)
}

async function readConfig (cli: CliOptions): Promise<unknown> {
  const base = cli.configFile === undefined ? {} : await loadConfigFile(cli.configFile)
  return mergeConfig(base, cli.overrides)
}

/**
 * Re-read the file, re-apply the flags and reload. Throws `TETHER_ERR_RELOAD` (with the cause
 * and its issues) when the new configuration cannot be read or is invalid: the balancer then
 * keeps the configuration it has.
 */
async function reload (cli: CliOptions, balancer: Balancer): Promise<void> {
  try {
    const raw = await readConfig(cli)
    balancer.reload(raw as BalancerConfig, cli.configFile === undefined ? {} : { configFile: cli.configFile })
  } catch (err) {
    const issues = err instanceof TetherBalancerError ? err.issues : []
    throw new TetherBalancerError('TETHER_ERR_RELOAD', undefined, { cause: err, issues })
  }
}

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

async function main (): Promise<void> {
  // A worker forked by the supervisor runs this same file: it takes its orders over IPC.
  if (cluster.isWorker) { runWorker(); return }
  if (process.argv[2] === 'status') {
    process.stdout.write(await runStatus(process.argv.slice(3), process.env))
    return
  }
  let cli: CliOptions
  try {
    cli = parseFlags(process.argv.slice(2), process.env)
  } catch (err) {
    fail(err)
  }
  if (cli.help) { process.stdout.write(`${USAGE}\n`); return }
  if (cli.version) { process.stdout.write(`${version()}\n`); return }

  let balancer: Balancer
  try {
    const raw = await readConfig(cli)
    if (cli.check) {
      const resolved = resolveConfig(raw, cli.configFile === undefined ? {} : { file: cli.configFile })
      const shown = { ...resolved, sticky: { ...resolved.sticky, secrets: resolved.sticky.secrets.map(() => '<hidden>') }, admin: resolved.admin === null ? null : { ...resolved.admin, token: resolved.admin.token === null ? null : '<hidden>' } }
      process.stdout.write(`${JSON.stringify(shown, null, 2)}\nconfiguration OK\n`)
      return
    }
    const fileOption = cli.configFile === undefined ? {} : { file: cli.configFile }
    const { workers } = resolveConfig(raw, fileOption)
    const count = workers === 'auto' ? availableParallelism() : workers
    if (count > 1) {
      await runPrimary({ raw, configFile: cli.configFile, workers: count, read: async () => await readConfig(cli), fail })
      return
    }
    // Cast only: createBalancer validates every field and names the file in its errors.
    balancer = createBalancer(raw as BalancerConfig, cli.configFile === undefined ? {} : { configFile: cli.configFile })
    await balancer.listen()
  } catch (err) {
    fail(err)
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      balancer.log.warn({ signal }, 'second signal: exiting now')
      process.exit(EXIT_RUNTIME)
    }
    stopping = true
    balancer.log.info({ signal }, 'stopping: no new connections, finishing in-flight requests')
    balancer.close().then(() => process.exit(0), (err: unknown) => {
      balancer.log.error({ err }, 'error while stopping')
      process.exit(EXIT_RUNTIME)
    })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGHUP', () => {
    if (stopping) return
    reload(cli, balancer).catch((err: TetherBalancerError) => {
      const cause = err.cause as Error
      const issues = err.issues.length > 0 ? err.issues.map(formatIssue) : [cause.message]
      balancer.log.error({ code: err.code, cause: cause instanceof TetherBalancerError ? cause.code : undefined, issues }, 'reload rejected: the previous configuration stays in force')
    })
  })
}

main().catch(fail)
