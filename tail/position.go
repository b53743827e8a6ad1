package tail

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// Position is where the tail stands in the source's binlog: the end of the
// last transaction whose events are committed to Kafka. It is what the tail
// keeps in the state topic, in the same Kafka transaction as the events.
type Position struct {
	File string `json:"file"`           // binlog file name, e.g. mysql-bin.000042
	Pos  uint32 `json:"pos"`            // offset after the transaction's last event
	GTID string `json:"gtid,omitempty"` // executed GTID set at that point, where the server has GTIDs
	// TsMs is the source commit time of that transaction (epoch ms), or for
	// a start at the binlog's end the source's clock when it was read; it
	// bounds the window a backfill must cover when the binlog after this
	// position is lost.
	TsMs int64 `json:"ts_ms,omitempty"`
	// Columns is the table's shape at that position as the tail reads it
	// ("name:family,…"), or after a DDL whose new shape no event has named
	// yet, "?FILE:POS DDL" (ddl.go). A restarted tail reads events without
	// column names by it.
	Columns string `json:"columns,omitempty"`
	// Shapes is, for the tail of configured tables, each table's shape
	// or lost marker as Columns has it, as a JSON object keyed by
	// "db.table" (a string, so that positions compare with ==).
	Shapes string `json:"shapes,omitempty"`
	// Epoch is the version epoch of File and Pos, and Server the identity
	// of the server whose binlog they are in (producer.Era): a tail that
	// finds another server, or a binlog behind its position, takes a new
	// epoch.
	Epoch  uint16 `json:"epoch,omitempty"`
	Server string `json:"server,omitempty"`
}

// samePlace tells whether two positions are the same place in the binlog,
// whatever shape they carry.
func (p Position) samePlace(o Position) bool {
	p.Columns, o.Columns, p.Shapes, o.Shapes = "", "", "", ""
	return p == o
}

// String renders the position as FILE:POS.
func (p Position) String() string { return p.File + ":" + strconv.FormatUint(uint64(p.Pos), 10) }

// Version is the source version of the position: what the consumer compares
// (schema.Source.Version).
func (p Position) Version() (uint64, bool) {
	return schema.Source{File: p.File, Pos: uint64(p.Pos), Epoch: p.Epoch}.Version()
}

func (p Position) encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

func decodePosition(b []byte) (Position, error) {
	var p Position
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("stored tail position %q: %w", b, err)
	}
	if p.File == "" {
		return p, fmt.Errorf("stored tail position %q: no binlog file", b)
	}
	return p, nil
}

// Start is where a tail with no stored position begins (--from).
type Start struct {
	Kind string   // "now", "earliest", "file" or "gtid"
	Pos  Position // for "file"
	GTID string   // for "gtid"
}

// ParseFrom parses --from: now, earliest, FILE:POS (mysql-bin.000042:1234)
// or a GTID set (MariaDB 0-1-100,1-2-7; MySQL uuid:1-100).
func ParseFrom(s string) (Start, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "now":
		return Start{Kind: "now"}, nil
	case "earliest":
		return Start{Kind: "earliest"}, nil
	}
	// A file name has a dot and no comma; a MySQL GTID's uuid has neither.
	if i := strings.LastIndexByte(s, ':'); i > 0 && strings.Contains(s[:i], ".") && !strings.Contains(s, ",") {
		file, pos := s[:i], s[i+1:]
		n, err := strconv.ParseUint(pos, 10, 32)
		if err != nil || n < 4 {
			return Start{}, fmt.Errorf("--from %q: the position after the colon must be a binlog offset of at least 4", s)
		}
		if _, ok := (Position{File: file, Pos: uint32(n)}).Version(); !ok {
			return Start{}, fmt.Errorf("--from %q: %q is not a binlog file name ending in a sequence number", s, file)
		}
		return Start{Kind: "file", Pos: Position{File: file, Pos: uint32(n)}}, nil
	}
	if _, err := mysql.ParseMariadbGTIDSet(s); err == nil && !strings.Contains(s, ":") {
		return Start{Kind: "gtid", GTID: s}, nil
	}
	if _, err := mysql.ParseMysqlGTIDSet(s); err == nil && strings.Contains(s, ":") {
		return Start{Kind: "gtid", GTID: s}, nil
	}
	return Start{}, fmt.Errorf("--from %q: want now, earliest, FILE:POS (e.g. mysql-bin.000042:1234) or a GTID set (e.g. 0-1-100 or 3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100)", s)
}

// gapHint says what to do when the binlog after p is gone, in the only
// order that loses nothing: the tail first, from now on, then the backfill
// of what came before (see recover.go).
func gapHint(p Position, margin time.Duration) string {
	const restart = "1. restart the tail first: `sluice tail --recover-purged` (the same as --reset --from now, and it records the gap's backfill window): from then on every change is streamed; "
	const after = " (a backfill is safe beside a running tail). In the other order, the changes made between the backfill's read and the restart are in neither. Deletes in the gap are not in any backfill: `sluice verify` finds the rows they left in the target"
	if p.TsMs == 0 {
		return restart + "2. then backfill the windows changed since the tail stopped with `sluice backfill`" + after
	}
	since := time.UnixMilli(p.TsMs).UTC().Truncate(time.Second)
	return fmt.Sprintf("changes committed since %s are not in Kafka: %s2. then backfill the windows they touched (for an event log written as it happens, from --recover-margin %s before: `sluice backfill --start-at '%s' --end-at <the restart's time or later>`)%s",
		since.Format(time.DateTime), restart, margin, since.Add(-margin).Format(time.RFC3339), after)
}
