// Issue 14: the no-lost-updates guarantees on PostgresStore, across three real processes
// sharing one schema of this run's own (dropped at the end).
import t from 'tap'
import { lostUpdateSuite } from './helpers/lost-updates.js'
import { PG_URL, pgSchema } from './helpers/sql.js'

await lostUpdateSuite(t, { STORE_URL: PG_URL, SCHEMA: pgSchema(t, 'nlu') })
