package tail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/schema"
)

// server is what the tail learned about the source at start.
type server struct {
	flavor   string // "mysql" or "mariadb"
	version  string
	serverID uint32
	gtid     bool // the server assigns GTIDs (MariaDB always; MySQL with gtid_mode=ON)
	// rowMetadata is binlog_row_metadata (MySQL 8.0.1+, MariaDB 10.5+):
	// FULL puts the column names in every table map, so that row values
	// are matched to columns by name at every position, across DDL.
	rowMetadata string
}

// checkServer reads the settings tail mode needs and returns one error naming
// every setting or grant that is missing, with the statement that fixes it,
// rather than letting the binlog protocol fail later with a bare code.
// CheckServer checks what a tail needs of the source server (its flavor,
// binlog settings and the user's replication grants) before anything else
// reads it, so a user who may not replicate hears that first, naming the
// grant, rather than that a table is not visible to it.
func CheckServer(ctx context.Context, db *sql.DB, flavor string) error {
	_, err := checkServer(ctx, db, flavor)
	return err
}

func checkServer(ctx context.Context, db *sql.DB, flavor string) (server, error) {
	var s server
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@server_id").Scan(&s.version, &s.serverID); err != nil {
		return s, fmt.Errorf("source: read version: %w", err)
	}
	detected := "mysql"
	if strings.Contains(strings.ToLower(s.version), "mariadb") {
		detected = "mariadb"
	}
	switch flavor {
	case "", "auto":
		s.flavor = detected
	case "mysql", "mariadb":
		s.flavor = flavor
		if flavor != detected {
			return s, fmt.Errorf("source: --flavor %s, but the server says it is %s (version %s)", flavor, detected, s.version)
		}
	default:
		return s, fmt.Errorf("--flavor %q: want auto, mysql or mariadb", flavor)
	}
	vars, err := variables(ctx, db, "log_bin", "binlog_format", "binlog_row_image", "gtid_mode", "binlog_row_metadata")
	if err != nil {
		return s, err
	}
	var problems []string
	if !strings.EqualFold(vars["log_bin"], "ON") && vars["log_bin"] != "1" {
		problems = append(problems, "log_bin is OFF: start the server with --log-bin (MySQL 8 has it on by default)")
	}
	if f := vars["binlog_format"]; !strings.EqualFold(f, "ROW") {
		problems = append(problems, fmt.Sprintf("binlog_format is %s, tail mode needs ROW: SET GLOBAL binlog_format = 'ROW' (and in the server's config)", f))
	}
	if img, ok := vars["binlog_row_image"]; ok && !strings.EqualFold(img, "FULL") {
		problems = append(problems, fmt.Sprintf("binlog_row_image is %s, tail mode needs FULL (whole before and after images): SET GLOBAL binlog_row_image = 'FULL' (and in the server's config)", img))
	}
	s.gtid = s.flavor == "mariadb" || strings.EqualFold(vars["gtid_mode"], "ON")
	s.rowMetadata = strings.ToUpper(vars["binlog_row_metadata"])
	if missing, err := missingGrants(ctx, db, s.flavor); err != nil {
		return s, err
	} else if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("the source user lacks %s: GRANT %s ON *.* TO <user>",
			strings.Join(missing, " and "), strings.Join(missing, ", ")))
	}
	if len(problems) > 0 {
		return s, fmt.Errorf("source %s (%s) cannot be tailed:\n  - %s", s.version, s.flavor, strings.Join(problems, "\n  - "))
	}
	return s, nil
}

// variables reads global server variables by name; a variable the server
// does not have is absent from the map.
func variables(ctx context.Context, db *sql.DB, names ...string) (map[string]string, error) {
	q := "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('" + strings.Join(names, "','") + "')"
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("source: read server variables %s: %w", strings.Join(names, ", "), err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("source: read server variables: %w", err)
		}
		out[strings.ToLower(k)] = v
	}
	return out, rows.Err()
}

// missingGrants returns the privileges tail mode needs that SHOW GRANTS does
// not show for the current user: replication of the binlog stream and
// reading the binlog status. Privileges reached only through a role are not
// seen; such a user gets a false report here, naming what it looked for.
func missingGrants(ctx context.Context, db *sql.DB, flavor string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return nil, fmt.Errorf("source: SHOW GRANTS: %w", err)
	}
	defer rows.Close()
	var all string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, fmt.Errorf("source: SHOW GRANTS: %w", err)
		}
		if strings.Contains(strings.ToUpper(g), " ON *.* ") {
			all += strings.ToUpper(g) + "\n"
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("source: SHOW GRANTS: %w", err)
	}
	has := func(any ...string) bool {
		for _, p := range any {
			if strings.Contains(all, p) {
				return true
			}
		}
		return false
	}
	if has("ALL PRIVILEGES") {
		return nil, nil
	}
	var missing []string
	if !has("REPLICATION SLAVE", "REPLICATION REPLICA") {
		missing = append(missing, "REPLICATION SLAVE")
	}
	status := []string{"REPLICATION CLIENT", "SUPER"}
	name := "REPLICATION CLIENT"
	if flavor == "mariadb" {
		status = append(status, "BINLOG MONITOR")
	}
	if !has(status...) {
		missing = append(missing, name)
	}
	return missing, nil
}

// currentPosition is the end of the binlog now, with the executed GTID set
// where the server has one. Its TsMs is the source's clock read just before
// the position: every change after the position commits later, so it bounds
// the window a backfill must cover if the binlog after it is ever purged.
func currentPosition(ctx context.Context, db *sql.DB, s server) (Position, error) {
	var p Position
	clock, err := sourceClock(ctx, db)
	if err != nil {
		return p, err
	}
	p.TsMs = clock.UnixMilli()
	var lastErr error
	for _, q := range schema.BinlogStatusQueries {
		file, pos, ok, err := schema.BinlogStatus(ctx, db, q)
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", q, err)
			continue // unknown statement on this server, or not permitted
		}
		if !ok {
			return p, errors.New("source: the server has no binary log (start it with --log-bin)")
		}
		p.File, p.Pos = file, uint32(pos)
		break
	}
	if p.File == "" {
		return p, fmt.Errorf("source: binlog position: %w", lastErr)
	}
	if s.gtid {
		// On MariaDB, the GTID position at exactly that file and offset: the
		// executed set read after it could already hold a later transaction,
		// and a resume checks the stored GTID position against the server's
		// at the same place (era.go).
		q, args := "SELECT @@GLOBAL.gtid_executed", []any(nil)
		if s.flavor == "mariadb" {
			q, args = "SELECT COALESCE(BINLOG_GTID_POS(?, ?), '')", []any{p.File, p.Pos}
		}
		if err := db.QueryRowContext(ctx, q, args...).Scan(&p.GTID); err != nil {
			return p, fmt.Errorf("source: executed GTID set: %w", err)
		}
	}
	return p, nil
}

// earliestPosition is the start of the oldest binlog file the server keeps.
func earliestPosition(ctx context.Context, db *sql.DB) (Position, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return Position{}, fmt.Errorf("source: SHOW BINARY LOGS: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return Position{}, errors.New("source: SHOW BINARY LOGS lists no file (is log_bin on?)")
	}
	var file string
	vals := make([]any, len(cols))
	vals[0] = &file
	for i := 1; i < len(cols); i++ {
		vals[i] = new(sql.RawBytes)
	}
	if err := rows.Scan(vals...); err != nil {
		return Position{}, fmt.Errorf("source: SHOW BINARY LOGS: %w", err)
	}
	return Position{File: file, Pos: 4}, nil
}

// oldestBinlog names the oldest binlog file the server still has, for the
// error that reports a purged position; empty when it cannot be read.
func oldestBinlog(ctx context.Context, db *sql.DB) string {
	p, err := earliestPosition(ctx, db)
	if err != nil {
		return ""
	}
	return p.File
}

// columnsOf returns the table's columns in ordinal order, as the server
// has them now (schema.ReadColumns), as the tail's layout names them.
func columnsOf(ctx context.Context, db *sql.DB, database, table string) ([]column, error) {
	read, err := schema.ReadColumns(ctx, db, database, table)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	cols := make([]column, len(read))
	for i, c := range read {
		cols[i] = column{name: strings.ToLower(c.Name), family: schemaFamily(c.DataType)}
	}
	return cols, nil
}
