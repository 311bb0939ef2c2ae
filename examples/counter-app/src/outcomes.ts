/**
 * What the counter-app answers when the session store does not give it a session to count:
 * one entry per store outcome a visit can meet, each with an honest status, a title and what
 * the visitor can do. Routes under /api get JSON; the page gets the same words as HTML.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errorCodes } from '@tether/middleware'
import type { ErrorCode } from '@tether/middleware'

/**
 * How the app presents one store outcome.
 *
 * @example
 * ```ts
 * const o: Outcome = outcomes.TETHER_ERR_SESSION_GONE!
 * ```
 */
export interface Outcome {
  readonly title: string
  /** What happened to the visit, in the visitor's words. */
  readonly detail: string
  /** Whether simply trying again is safe and sensible. */
  readonly retry: boolean
}

/** The store outcomes a visit can meet. Other errors keep Fastify's default handling. */
export const outcomes: Partial<Record<ErrorCode, Outcome>> = {
  TETHER_ERR_SESSION_GONE: {
    title: 'Your session has ended',
    detail: 'The session was removed from the store (reset elsewhere, expired, or the store lost its data) while this visit ran. This visit was not counted. The next visit starts a new session at 1.',
    retry: true
  },
  TETHER_ERR_STORE_UNAVAILABLE: {
    title: 'The session store is unavailable',
    detail: 'The store could not be reached, so this visit was not counted and nothing was changed. Try again in a moment: the app recovers by itself as soon as the store is back.',
    retry: true
  },
  TETHER_ERR_STORE_OUTCOME_UNKNOWN: {
    title: 'This visit may or may not have been counted',
    detail: 'The store did not answer in time after the visit was sent to it. It counts the visit at most once, but this node cannot tell whether it did. Reload to see the current count: a reload is a new visit and counts on its own.',
    retry: false
  },
  TETHER_ERR_LOCK_TIMEOUT: {
    title: 'The session is busy',
    detail: 'Another request held this session for too long. This visit was not counted; try again.',
    retry: true
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const esc = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c]!)

/**
 * Fastify error handler: store outcomes as a page or JSON with their own status; anything else
 * is passed on unchanged (Fastify's default answer).
 *
 * @example
 * ```ts
 * app.setErrorHandler(answerStoreOutcome)
 * ```
 */
export async function answerStoreOutcome (error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const code = error.code as ErrorCode
  const outcome = Object.hasOwn(outcomes, code) ? outcomes[code] : undefined
  if (outcome === undefined) throw error
  const status = errorCodes[code].status ?? 500
  request.log.warn({ code }, outcome.title)
  reply.code(status).header('cache-control', 'no-store')
  // A client told to retry a store outage is told when, too.
  if (status === 503 && outcome.retry) reply.header('retry-after', '1')
  if (request.url.startsWith('/api/')) return { error: outcome.title, code, detail: outcome.detail, retry: outcome.retry }
  return await reply.type('text/html; charset=utf-8').send(renderOutcome(code, outcome))
}

/** The error page: the same look as the counter page, no scripts. */
function renderOutcome (code: string, outcome: Outcome): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether counter · ${esc(outcome.title)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  main { max-width: 40rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 12px; box-shadow: 0 2px 12px #0001; }
  h1 { margin: 0 0 1rem; font-size: 1.4rem; }
  code { color: #5b6475; }
  a.button { display: inline-block; padding: .5rem 1rem; border-radius: 8px; border: 1px solid #2f6fed; background: #2f6fed; color: #fff; text-decoration: none; }
</style>
</head>
<body>
<main>
  <h1 id="outcome">${esc(outcome.title)}</h1>
  <p id="detail">${esc(outcome.detail)}</p>
  <p><code id="code">${esc(code)}</code></p>
  <a class="button" href="/">${outcome.retry ? 'Try again' : 'Reload to see the count'}</a>
</main>
</body>
</html>
`
}
