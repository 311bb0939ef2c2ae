// Issue 14: the no-lost-updates guarantees on MySqlStore (MariaDB here, MySQL 8 alike), across
// three real processes sharing tables of this run's own (dropped at the end).
import t from 'tap'
import { lostUpdateSuite } from './helpers/lost-updates.js'
import { MYSQL_URL, mysqlTable } from './helpers/sql.js'

await lostUpdateSuite(t, { STORE_URL: MYSQL_URL, SCHEMA: mysqlTable(t, 'nlu') })
