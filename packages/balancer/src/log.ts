/** The balancer's structured logger. */
import { pino, type Logger } from 'pino'
import type { LogLevel } from './config/types.js'

/**
 * A pino logger for the balancer: JSON lines on stdout, ISO timestamps.
 *
 * @example
 * ```ts
 * const log = createLogger('info')
 * log.info({ node: 'app-1' }, 'node up')
 * ```
 */
export function createLogger (level: LogLevel): Logger {
  return pino({ name: 'tether-balancer', level, timestamp: pino.stdTimeFunctions.isoTime })
}

export type { Logger }
