package schema

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Column is one column of a table as information_schema describes it: what
// every stage reads instead of assuming a type. Its JSON is the form the
// producers store a source's columns in (SourceShape).
type Column struct {
	Name     string `json:"name"`
	Ordinal  int    `json:"ordinal"`   // ORDINAL_POSITION, from 1
	DataType string `json:"data_type"` // DATA_TYPE, lower case: int, bigint, varchar, datetime, enum, …
	// ColumnType is COLUMN_TYPE as the server prints it: "bigint(20)
	// unsigned", "decimal(65,30)", "enum('a','B')", "datetime(6)".
	ColumnType string `json:"column_type"`
	Unsigned   bool   `json:"unsigned,omitempty"`
	Nullable   bool   `json:"nullable,omitempty"`
	// Length is CHARACTER_MAXIMUM_LENGTH: characters for CHAR/VARCHAR/TEXT,
	// bytes for BINARY/VARBINARY/BLOB; 0 where the type has none.
	Length int64 `json:"length,omitempty"`
	// Precision is NUMERIC_PRECISION for DECIMAL and the integer and float
	// types, DATETIME_PRECISION (fractional digits, 0–6) for DATETIME,
	// TIMESTAMP and TIME, and the width in bits for BIT.
	Precision int    `json:"precision,omitempty"`
	Scale     int    `json:"scale,omitempty"` // NUMERIC_SCALE
	Charset   string `json:"charset,omitempty"`
	Collation string `json:"collation,omitempty"`
	// Elements are the members of an ENUM or SET, in order.
	Elements      []string `json:"elements,omitempty"`
	Generated     bool     `json:"generated,omitempty"` // a generated (virtual or stored) column: read, never written
	AutoIncrement bool     `json:"auto_increment,omitempty"`
}

// Index is a unique index of a table: the PRIMARY KEY or a UNIQUE KEY.
type Index struct {
	Name    string   `json:"name"` // PRIMARY for the primary key
	Columns []string `json:"columns"`
}

// Querier is what reading information_schema needs: a *sql.DB, *sql.Conn
// or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ReadColumns returns the columns of database.table in ordinal order, or an
// error naming the table when it has none (it does not exist, or the user
// may not see it).
func ReadColumns(ctx context.Context, q Querier, database, table string) ([]Column, error) {
	rows, err := q.QueryContext(ctx, `SELECT COLUMN_NAME, ORDINAL_POSITION, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE,
		COALESCE(CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(NUMERIC_PRECISION, DATETIME_PRECISION, 0), COALESCE(NUMERIC_SCALE, 0),
		COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, ''), LOWER(EXTRA)
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, database, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", database, table, err)
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		var nullable, extra string
		if err := rows.Scan(&c.Name, &c.Ordinal, &c.DataType, &c.ColumnType, &nullable, &c.Length, &c.Precision, &c.Scale,
			&c.Charset, &c.Collation, &extra); err != nil {
			return nil, fmt.Errorf("columns of %s.%s: %w", database, table, err)
		}
		c.Nullable = nullable == "YES"
		c.Unsigned = strings.Contains(strings.ToLower(c.ColumnType), "unsigned")
		c.AutoIncrement = strings.Contains(extra, "auto_increment")
		c.Generated = strings.Contains(extra, "generated") || strings.Contains(extra, "virtual") || strings.Contains(extra, "persistent") || strings.Contains(extra, "stored")
		if c.DataType == "bit" {
			c.Precision = bitWidth(c.ColumnType)
		}
		if c.DataType == "enum" || c.DataType == "set" {
			c.Elements = parseElements(c.ColumnType)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s.%s: %w", database, table, err)
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s.%s: not found in information_schema (it does not exist, or the user may not see it)", database, table)
	}
	return cols, nil
}

// ReadUniqueIndexes returns the table's PRIMARY KEY (first, when it has one)
// and its UNIQUE KEYs, each with its columns in index order.
func ReadUniqueIndexes(ctx context.Context, q Querier, database, table string) ([]Index, error) {
	rows, err := q.QueryContext(ctx, `SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
		ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX`, database, table)
	if err != nil {
		return nil, fmt.Errorf("unique keys of %s.%s: %w", database, table, err)
	}
	defer rows.Close()
	var out []Index
	for rows.Next() {
		var name, col string
		if err := rows.Scan(&name, &col); err != nil {
			return nil, fmt.Errorf("unique keys of %s.%s: %w", database, table, err)
		}
		if n := len(out); n > 0 && out[n-1].Name == name {
			out[n-1].Columns = append(out[n-1].Columns, col)
			continue
		}
		out = append(out, Index{Name: name, Columns: []string{col}})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unique keys of %s.%s: %w", database, table, err)
	}
	return out, nil
}

// bitWidth reads n from "bit(n)".
func bitWidth(columnType string) int {
	var n int
	if _, err := fmt.Sscanf(strings.ToLower(columnType), "bit(%d)", &n); err != nil {
		return 1
	}
	return n
}

// parseElements reads the quoted members of "enum('a','b')" or "set(…)",
// where a quote inside a member is doubled, as the server prints it.
func parseElements(columnType string) []string {
	open := strings.IndexByte(columnType, '(')
	if open < 0 {
		return nil
	}
	s := columnType[open+1:]
	var out []string
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			return out
		}
		s = s[i+1:]
		var b strings.Builder
		for len(s) > 0 {
			if s[0] == '\'' {
				if len(s) > 1 && s[1] == '\'' {
					b.WriteByte('\'')
					s = s[2:]
					continue
				}
				s = s[1:]
				break
			}
			b.WriteByte(s[0])
			s = s[1:]
		}
		out = append(out, b.String())
	}
}
