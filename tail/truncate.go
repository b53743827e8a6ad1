package tail

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/sluice-dev/sluice/schema"
)

// truncateEvent produces a TRUNCATE of the table as Debezium does: op "t",
// no images, no key, and the statement's source block. Its version (the end
// of the statement in the binlog) is what the consumer compares: every row
// the target holds with an older version is gone from the source, and a
// backfill read labelled older than it must not bring one back.
func (t *Tail) truncateEvent(ctx context.Context, s *streamState, h *replication.EventHeader) error {
	src := schema.Source{
		Connector: "mysql", Name: "sluice", TsMs: int64(h.Timestamp) * 1000, Snapshot: "false",
		DB: t.cfg.Database, Table: t.cfg.Table, ServerID: h.ServerID, GTID: s.curGTID, File: s.file, Pos: uint64(h.LogPos), Epoch: t.era.Epoch,
	}
	if _, ok := src.Version(); !ok {
		return permanent(fmt.Errorf("tail: binlog file %q at %d gives no source version (a file name ending in a sequence number is needed)", s.file, h.LogPos))
	}
	t.log.Warn("tail: TRUNCATE of the source table; carrying it as a truncate event (op t): the consumer empties the target of every older row",
		"table", t.cfg.Database+"."+t.cfg.Table, "binlog", fmt.Sprintf("%s:%d", s.file, h.LogPos))
	t.produce(ctx, s, &schema.Event{Op: schema.OpTruncate, Source: src, TsMs: time.Now().UnixMilli()})
	return nil
}

// truncateRefused is the error of a TRUNCATE under --on-truncate=fail.
func (t *Tail) truncateRefused(s *streamState, h *replication.EventHeader, q string) error {
	return truncateRefused(s, h, t.cfg.Database+"."+t.cfg.Table, q)
}

// truncateRefused is the error of a TRUNCATE of table (db.table) under
// --on-truncate=fail.
func truncateRefused(s *streamState, h *replication.EventHeader, table, q string) error {
	start, end := eventSpan(s, h)
	return fmt.Errorf("tail: binlog %s holds a TRUNCATE of %s (%q) and --on-truncate=fail: the tail stops rather than carry it, and the target still has the table's rows. "+
		"To carry it, restart with --on-truncate=apply (the tail resumes before the statement); to leave the target as it is, restart past it with --reset --from %s",
		start, table, truncate(q, 200), end)
}

// statementError is the error of a change of the table logged as a
// statement: it has no row images, so the tail cannot carry it.
func (t *Tail) statementError(s *streamState, h *replication.EventHeader, q string, effect stmtEffect, db, table string) error {
	start, end := eventSpan(s, h)
	what := "a change of %s.%s logged as a statement, not as rows (the writing session's binlog_format was STATEMENT or MIXED)"
	if effect == stmtPartition {
		what = "a partition operation that removes or swaps rows of %s.%s without row events"
	}
	return fmt.Errorf("tail: binlog %s holds "+what+": %q. Tail mode carries changes from row images, which a statement does not have: "+
		"the tail cannot tell which rows it changed, and stops rather than skip it. "+
		"Log every change of the table in ROW format (binlog_format = ROW in the server's configuration and SET GLOBAL binlog_format = 'ROW'; no writer may SET SESSION binlog_format), then "+
		"1. restart the tail past the statement with --reset --from %s (every later change is carried), "+
		"2. then backfill the windows the statement changed (`sluice backfill --start-at … --end-at …`); rows it deleted are in no backfill: `sluice verify` finds them in the target",
		start, db, table, truncate(q, 200), end)
}

// loadStatement checks a LOAD DATA logged as a statement. go-mysql decodes
// no text for it, so the schema and the statement are read from the raw
// event here; when they cannot be, the load is taken as one of the table.
func (t *Tail) loadStatement(s *streamState, ev *replication.BinlogEvent) error {
	schemaName, q, ok := executeLoadQuery(ev.RawData)
	if !ok {
		return t.statementError(s, ev.Header, "LOAD DATA … (a statement-format load whose table could not be read)", stmtDML, t.cfg.Database, t.cfg.Table)
	}
	if t.cfg.Table != "" {
		if effect, _ := classifyStatement(q, schemaName, t.cfg.Database, t.cfg.Table); effect != stmtNone {
			return t.statementError(s, ev.Header, q, effect, t.cfg.Database, t.cfg.Table)
		}
	}
	for _, f := range t.follows {
		if effect, _ := classifyStatement(q, schemaName, f.t.Source.DB, f.t.Source.Table); effect != stmtNone {
			return t.statementError(s, ev.Header, q, effect, f.t.Source.DB, f.t.Source.Table)
		}
	}
	return nil
}

// executeLoadQuery reads the default database and the statement of an
// EXECUTE_LOAD_QUERY event: after the 19-byte header, 26 bytes of fixed
// fields (of which the schema length at 8 and the status variables' length
// at 11), the status variables, the schema and a NUL, then the statement
// up to the event's end (with the checksum, where the server writes one:
// four bytes of noise after the statement, harmless to classifyStatement).
func executeLoadQuery(raw []byte) (schemaName, query string, ok bool) {
	const header, fixed = replication.EventHeaderSize, 26
	if len(raw) < header+fixed {
		return "", "", false
	}
	body := raw[header:]
	schemaLen := int(body[8])
	statusLen := int(binary.LittleEndian.Uint16(body[11:]))
	at := fixed + statusLen
	if at+schemaLen+1 > len(body) {
		return "", "", false
	}
	return string(body[at : at+schemaLen]), string(body[at+schemaLen+1:]), true
}

// eventSpan names where an event starts and the position after it.
func eventSpan(s *streamState, h *replication.EventHeader) (start, end string) {
	return fmt.Sprintf("%s:%d", s.file, h.LogPos-h.EventSize), fmt.Sprintf("%s:%d", s.file, h.LogPos)
}
