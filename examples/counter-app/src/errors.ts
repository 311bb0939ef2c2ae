/**
 * The counter-app's error registry: the few ways start-up can fail, each with a stable code
 * and the exit status the process ends with.
 */

const registry = {
  COUNTER_ERR_CONFIG: { exitCode: 2, summary: 'A flag or environment variable is missing or invalid.' },
  COUNTER_ERR_LISTEN: { exitCode: 1, summary: 'The HTTP port cannot be bound (in use, or not permitted).' },
  COUNTER_ERR_STORE: { exitCode: 1, summary: 'The session store cannot be opened.' }
} as const

/**
 * Union of the counter-app's error codes.
 *
 * @example
 * ```ts
 * const code: CounterErrorCode = 'COUNTER_ERR_LISTEN'
 * ```
 */
export type CounterErrorCode = keyof typeof registry

/**
 * A start-up failure: `message` is the one line printed on stderr.
 *
 * @example
 * ```ts
 * throw new CounterAppError('COUNTER_ERR_CONFIG', "--port must be an integer from 1 to 65535; got 'abc'")
 * ```
 */
export class CounterAppError extends Error {
  readonly code: CounterErrorCode
  /** The process exit status for this failure. */
  readonly exitCode: number

  constructor (code: CounterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CounterAppError'
    this.code = code
    this.exitCode = registry[code].exitCode
  }
}
