package schema

import (
	"context"
	"database/sql"
)

// BinlogStatusQueries read the server's current binlog position, newest
// spelling first: MySQL 8.2 renamed SHOW MASTER STATUS, which 8.4 no longer
// has; MariaDB knows only the old one.
var BinlogStatusQueries = []string{"SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"}

// BinlogStatus reads the current binlog file and offset with q, one of
// BinlogStatusQueries. ok is false when the server has no binlog. An error
// is a statement the server does not know or the user may not run
// (REPLICATION CLIENT), or a lost connection.
func BinlogStatus(ctx context.Context, db *sql.DB, q string) (file string, pos uint64, ok bool, err error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return "", 0, false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", 0, false, err
	}
	if !rows.Next() || len(cols) < 2 {
		return "", 0, false, rows.Err()
	}
	vals := make([]any, len(cols))
	vals[0], vals[1] = &file, &pos
	for i := 2; i < len(cols); i++ {
		vals[i] = new(sql.RawBytes)
	}
	if err := rows.Scan(vals...); err != nil {
		return "", 0, false, err
	}
	return file, pos, file != "", nil
}
