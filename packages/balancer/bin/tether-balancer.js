#!/usr/bin/env node
// The `tether-balancer` binary. A committed shim rather than dist/cli.js itself: npm links
// bins at install time, before `prepare` has compiled dist/, and skips a bin whose file does
// not exist yet, so a fresh clone would have no `tether-balancer` on its PATH.
import '../dist/cli.js'
