// Package backend is what the store backends (store/postgres,
// store/sqlite) share beside the database: checking and stamping an
// append before it is written ([Prepare]), explaining one that could not
// go ahead ([Diagnose]), marking an event read through a link, checking
// the arguments of reads and links, and fanning out commit signals
// ([Signal]). Applications use package store; nothing here is promised to
// stay.
package backend
