package schema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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

// Server is the identity of the server whose binlog positions a version is
// made of, and where its binlog stands now.
type Server struct {
	// Identity names the server: "mariadb server_id=N", or on MySQL
	// "mysql server_id=N server_uuid=U". A new primary, a server restarted
	// with another server_id, or a move between MySQL and MariaDB changes it.
	Identity string
	ReadOnly bool   // @@read_only: a replica, or a primary that was demoted
	File     string // current binlog file, empty without a binlog
	Pos      uint64
}

// ReadServer reads the source server's identity, read_only flag and current
// binlog position (with the first of BinlogStatusQueries it may run; a user
// without REPLICATION CLIENT gets no position, not an error).
func ReadServer(ctx context.Context, db *sql.DB) (Server, error) {
	var s Server
	var id uint64
	var version string
	if err := db.QueryRowContext(ctx, "SELECT @@server_id, VERSION(), @@read_only").Scan(&id, &version, &s.ReadOnly); err != nil {
		return s, fmt.Errorf("source: server identity: %w", err)
	}
	s.Identity = fmt.Sprintf("mariadb server_id=%d", id)
	if !strings.Contains(strings.ToLower(version), "mariadb") {
		var uuid string
		if err := db.QueryRowContext(ctx, "SELECT @@server_uuid").Scan(&uuid); err != nil {
			return s, fmt.Errorf("source: server identity: %w", err)
		}
		s.Identity = fmt.Sprintf("mysql server_id=%d server_uuid=%s", id, uuid)
	}
	for _, q := range BinlogStatusQueries {
		file, pos, ok, err := BinlogStatus(ctx, db, q)
		if err != nil {
			continue
		}
		if ok {
			s.File, s.Pos = file, pos
		}
		break
	}
	return s, nil
}
