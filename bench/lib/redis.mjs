// A private redis-server for a benchmark run (free port, no persistence), and command counts.
import { spawn, execFileSync } from 'node:child_process'
import { freePort, waitForPort } from './proc.mjs'

export async function startRedisServer () {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore', detached: true })
  await waitForPort(port)
  const cli = (...args) => execFileSync('redis-cli', ['-p', String(port), ...args]).toString()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cli,
    resetStats () { cli('CONFIG', 'RESETSTAT') },
    /** cmdstat name → calls since the last reset */
    commandStats () {
      const out = {}
      for (const m of cli('INFO', 'commandstats').matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2])
      return out
    },
    flush () { cli('FLUSHALL') },
    stop () { try { process.kill(-child.pid, 'SIGKILL') } catch {} }
  }
}

// What Tether's RedisStore sends itself: HGETALL (loads) and scripts (writes, locks). It also
// sends DEL to destroy, but DEL runs inside the unlock script too; the benchmarks destroy
// nothing, so every other command seen in a run that used scripts ran inside one of them.
const CLIENT_SENT_WITH_SCRIPTS = new Set(['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'hgetall'])
const SCRIPT_CALLS = new Set(['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall'])

/** Split command counts into round trips (client-issued) and commands run inside scripts. */
export function roundTrips (stats) {
  const scripted = Object.keys(stats).some((k) => SCRIPT_CALLS.has(k))
  let client = 0
  let inner = 0
  for (const [cmd, calls] of Object.entries(stats)) {
    if (cmd === 'config' || cmd === 'info') continue
    if (!scripted || CLIENT_SENT_WITH_SCRIPTS.has(cmd)) client += calls
    else inner += calls
  }
  return { client, inner }
}
