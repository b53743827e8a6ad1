package tail

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// The table's shape across DDL.
//
// With binlog_row_metadata=FULL every table map names its columns, and the
// tail matches values to columns by those names, at the position of each
// event: a column added, dropped or moved while the tail runs, or while it
// is stopped, is read right on both sides of the DDL. Without names (the
// servers' default, MINIMAL or NO_LOG), a row image is a list of values in
// the column order of the moment it was logged, which the binlog does not
// say; the tail then reads it by a shape it knows (the table's columns when
// it started, or the shape it stored with its position, which is the shape
// at that position), checked against each table map's column count and
// types. After a DDL on the table the shape is known again only from names:
// an event without them stops the tail with an error that names the DDL and
// the command that gets past it (shapeLostError).

// shapeLost is a DDL after which the table's shape is known only from
// column names in the events.
type shapeLost struct {
	ddl   string   // the statement, shortened
	after Position // the end of the DDL's event
}

// marker is what the tail stores in place of a shape.
func (l *shapeLost) marker() string { return "?" + l.after.String() + " " + l.ddl }

func parseShapeLost(m string) (*shapeLost, bool) {
	if !strings.HasPrefix(m, "?") {
		return nil, false
	}
	at, ddl, _ := strings.Cut(m[1:], " ")
	st, err := ParseFrom(at)
	if err != nil || st.Kind != "file" {
		return nil, false
	}
	return &shapeLost{ddl: ddl, after: st.Pos}, true
}

// shapeLostError is the stop for a row event without column names after a
// DDL on the table. from is where to restart: past the DDL, and past
// whatever the tail has committed since.
func shapeLostError(table string, lost *shapeLost, at Position, metadata string, from Position) error {
	if metadata == "" {
		metadata = "not available on this server"
	}
	return fmt.Errorf("tail: %s changed shape at %s (%s), and the row event at %s carries no column names (binlog_row_metadata is %s): "+
		"the tail cannot tell which value belongs to which column, so it stops rather than guess. To go on: set binlog_row_metadata = FULL on the source "+
		"(SET GLOBAL binlog_row_metadata = 'FULL', and in its configuration), so that new events name their columns, then restart with "+
		"`sluice tail --reset --from %s`: the events logged without names are then read by the table's current columns, which is exact when the table has had no other DDL since",
		table, lost.after, lost.ddl, at, metadata, from)
}

// shapeMismatchError is the stop for a row event without column names that
// does not fit the shape the tail knows.
func shapeMismatchError(table string, at Position, why, metadata string) error {
	return fmt.Errorf("tail: the row event of %s at %s does not fit the table's shape as the tail knows it: %s. "+
		"The event carries no column names (binlog_row_metadata is %s), so the tail stops rather than guess. "+
		"Set binlog_row_metadata = FULL on the source, and find the DDL that changed the table after %s (SHOW BINLOG EVENTS); "+
		"then restart with `sluice tail --reset --from <the position after that DDL>`, and backfill the window of the changes in between",
		table, at, why, metadata, at)
}

// namedLayout is the layout of the last table map that named its columns.
// Every source transaction logs a table map of its own, nearly always the
// same as the one before: same says so without building the layout again.
type namedLayout struct {
	tm *replication.TableMapEvent
	l  layout
}

func (n *namedLayout) same(tm *replication.TableMapEvent) bool {
	if n.tm == nil || tm == nil || len(tm.ColumnName) == 0 {
		return false
	}
	if n.tm == tm {
		return true
	}
	if len(tm.ColumnName) != len(n.tm.ColumnName) || !bytes.Equal(tm.ColumnType, n.tm.ColumnType) {
		return false
	}
	for i, name := range tm.ColumnName {
		if !bytes.Equal(name, n.tm.ColumnName[i]) {
			return false
		}
	}
	return true
}
