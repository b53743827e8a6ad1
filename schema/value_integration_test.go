package schema

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	driver "github.com/go-sql-driver/mysql"
)

// typesColumns is a table with every type of issue 20 part 2, each NULL-able.
var typesColumns = []string{
	"ti TINYINT", "tiu TINYINT UNSIGNED", "si SMALLINT", "siu SMALLINT UNSIGNED", "mi MEDIUMINT", "miu MEDIUMINT UNSIGNED",
	"i INT", "iu INT UNSIGNED", "bi BIGINT", "biu BIGINT UNSIGNED",
	"dec65 DECIMAL(65,30)", "dec10 DECIMAL(10,0)", "dec52 DECIMAL(5,2)",
	"f FLOAT", "d DOUBLE",
	"ch CHAR(10)", "vc VARCHAR(100)", "tx TEXT", "lt LONGTEXT",
	"bn BINARY(8)", "vb VARBINARY(16)", "bl BLOB",
	"dt DATE",
	"dt0 DATETIME", "dt1 DATETIME(1)", "dt2 DATETIME(2)", "dt3 DATETIME(3)", "dt4 DATETIME(4)", "dt5 DATETIME(5)", "dt6 DATETIME(6)",
	"ts0 TIMESTAMP NULL DEFAULT NULL", "ts1 TIMESTAMP(1) NULL DEFAULT NULL", "ts2 TIMESTAMP(2) NULL DEFAULT NULL",
	"ts3 TIMESTAMP(3) NULL DEFAULT NULL", "ts4 TIMESTAMP(4) NULL DEFAULT NULL", "ts5 TIMESTAMP(5) NULL DEFAULT NULL",
	"ts6 TIMESTAMP(6) NULL DEFAULT NULL",
	"tm TIME", "tm3 TIME(3)", "tm6 TIME(6)",
	"y YEAR", "j JSON", "e ENUM('a','b','c''q','😀')", "s SET('x','y','z')",
	"b1 BIT(1)", "b10 BIT(10)", "b64 BIT(64)",
}

// typesRows are the rows of edge values, as SQL literals by column name;
// a column not named is NULL. Row 1 is all NULL.
var typesRows = []map[string]string{
	{},
	{ // minimum and negative edges
		"ti": "-128", "tiu": "0", "si": "-32768", "siu": "0", "mi": "-8388608", "miu": "0", "i": "-2147483648", "iu": "0",
		"bi": "-9223372036854775808", "biu": "0",
		"dec65": "-99999999999999999999999999999999999.999999999999999999999999999999", "dec10": "-9999999999", "dec52": "-999.99",
		"f": "-3.4028234663852886e38", "d": "-1.7976931348623157e308",
		"ch": "''", "vc": "''", "tx": "''", "lt": "''", "bn": "X'0000000000000000'", "vb": "X''", "bl": "X''",
		"dt": "'1000-01-01'", "dt0": "'1000-01-01 00:00:00'", "dt1": "'1000-01-01 00:00:00.0'", "dt2": "'1000-01-01 00:00:00.00'",
		"dt3": "'1000-01-01 00:00:00.000'", "dt4": "'1000-01-01 00:00:00.0000'", "dt5": "'1000-01-01 00:00:00.00000'",
		"dt6": "'1000-01-01 00:00:00.000000'",
		"ts0": "'1970-01-01 00:00:01'", "ts1": "'1970-01-01 00:00:01.0'", "ts2": "'1970-01-01 00:00:01.00'", "ts3": "'1970-01-01 00:00:01.000'",
		"ts4": "'1970-01-01 00:00:01.0000'", "ts5": "'1970-01-01 00:00:01.00000'", "ts6": "'1970-01-01 00:00:01.000000'",
		"tm": "'-838:59:59'", "tm3": "'-838:59:59.000'", "tm6": "'-838:59:59.000000'",
		"y": "1901", "j": "'[]'", "e": "'a'", "s": "''", "b1": "b'0'", "b10": "b'0'", "b64": "b'0'",
	},
	{ // maximum edges
		"ti": "127", "tiu": "255", "si": "32767", "siu": "65535", "mi": "8388607", "miu": "16777215", "i": "2147483647", "iu": "4294967295",
		"bi": "9223372036854775807", "biu": "18446744073709551615",
		"dec65": "99999999999999999999999999999999999.999999999999999999999999999999", "dec10": "9999999999", "dec52": "999.99",
		"f": "3.4028234663852886e38", "d": "1.7976931348623157e308",
		"ch": "'😀😀😀😀😀😀😀😀😀😀'", "vc": "'" + strings.Repeat("€", 100) + "'", "tx": "'" + strings.Repeat("ü😀", 2000) + "'",
		"lt": "REPEAT('x', 100000)", "bn": "X'FFFFFFFFFFFFFFFF'", "vb": "X'00FF00FF00FF00FF00FF00FF00FF0000'",
		"bl": "X'" + strings.Repeat("00FF7F80", 100) + "'",
		"dt": "'9999-12-31'", "dt0": "'9999-12-31 23:59:59'", "dt1": "'9999-12-31 23:59:59.9'", "dt2": "'9999-12-31 23:59:59.99'",
		"dt3": "'9999-12-31 23:59:59.999'", "dt4": "'9999-12-31 23:59:59.9999'", "dt5": "'9999-12-31 23:59:59.99999'",
		"dt6": "'9999-12-31 23:59:59.999999'",
		"ts0": "'2038-01-19 03:14:07'", "ts1": "'2038-01-19 03:14:07.9'", "ts2": "'2038-01-19 03:14:07.99'", "ts3": "'2038-01-19 03:14:07.999'",
		"ts4": "'2038-01-19 03:14:07.9999'", "ts5": "'2038-01-19 03:14:07.99999'", "ts6": "'2038-01-19 03:14:07.999999'",
		"tm": "'838:59:59'", "tm3": "'838:59:59.999'", "tm6": "'838:59:59.999999'",
		"y": "2155", "j": `'{"a": [1, 2.50, "😀", "\\u00e9"], "b": null, "c": {"d": true}}'`, "e": "'😀'", "s": "'x,y,z'",
		"b1": "b'1'", "b10": "b'1111111111'", "b64": "0xFFFFFFFFFFFFFFFF",
	},
	{ // values inside: signs, NULs, quotes, fractions, the FLOAT and DOUBLE corners
		"ti": "-1", "tiu": "128", "si": "-1", "siu": "32768", "mi": "-1", "miu": "8388608", "i": "-1", "iu": "2147483648",
		"bi": "-1", "biu": "9223372036854775808",
		"dec65": "-0.000000000000000000000000000001", "dec10": "0", "dec52": "0.01",
		"f": "16777217", "d": "0.1",
		"ch": "'a\\'b\\\\c'", "vc": "'nul\\0byte \"q\" \\n\\r\\t é'", "tx": "'line\\nbreak\\Z'", "lt": "''",
		"bn": "X'6100'", "vb": "X'0000'", "bl": "X'00'",
		"dt": "'1970-01-01'", "dt0": "'1969-12-31 23:59:59'", "dt1": "'2024-01-02 03:04:05.1'", "dt2": "'2024-01-02 03:04:05.01'",
		"dt3": "'1969-12-31 23:59:59.999'", "dt4": "'2024-01-02 03:04:05.0001'", "dt5": "'2024-01-02 03:04:05.00001'",
		"dt6": "'1969-12-31 23:59:59.999999'",
		"ts0": "'2024-01-02 03:04:05'", "ts1": "'2024-01-02 03:04:05.1'", "ts2": "'2024-01-02 03:04:05.12'", "ts3": "'2024-01-02 03:04:05.100'",
		"ts4": "'2024-01-02 03:04:05.0001'", "ts5": "'2024-01-02 03:04:05.12345'", "ts6": "'2024-01-02 03:04:05.000001'",
		"tm": "'00:00:00'", "tm3": "'-00:00:00.001'", "tm6": "'100:00:00.000001'",
		"y": "0", "j": `'"str"'`, "e": "'c''q'", "s": "'z'", "b1": "b'1'", "b10": "b'1000000001'", "b64": "0x8000000000000000",
	},
	{ // more FLOAT and DOUBLE corners and zeros
		"ti": "0", "tiu": "1", "si": "0", "siu": "1", "mi": "0", "miu": "1", "i": "0", "iu": "1", "bi": "0", "biu": "1",
		"dec65": "0", "dec10": "-1", "dec52": "-0.01",
		"f": "1.401298464324817e-45", "d": "5e-324",
		"ch": "'trail  '", "vc": "'trail  '", "tx": "' '", "lt": "'null'", "bn": "X'0000000000000001'", "vb": "X'20'", "bl": "X'0000'",
		"dt": "'2024-02-29'", "dt0": "'2024-02-29 12:00:00'", "tm": "'-00:00:01'", "tm3": "'12:00:00'", "tm6": "'-00:00:00.000001'",
		"y": "2024", "j": "'null'", "e": "'b'", "s": "'x,z'", "b1": "b'0'", "b10": "b'1'", "b64": "1",
	},
	{
		"f": "0.1", "d": "1e15", "dec52": "-0.00", "y": "2000",
	},
	{
		"f": "-1.17549435e-38", "d": "-2.2250738585072014e-308",
	},
	{
		"f": "3.14159274", "d": "1e-16",
	},
	{
		"f": "1e-10", "d": "123456789012345678",
	},
}

// typesDB opens the test server with params, or skips (fails under
// SLUICE_REQUIRE_INTEGRATION=1 or CI=true) without one.
func typesDB(t *testing.T, params string) *sql.DB {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	fail := func(err error) {
		t.Helper()
		if os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if dsn == "" {
		fail(errors.New("SLUICE_TEST_MYSQL_DSN is not set"))
	}
	db, err := sql.Open("mysql", dsn+params)
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		fail(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// compareExpr is an exact text of column c's stored value for comparing a
// source and a target row.
func compareExpr(c Column) string {
	q, _ := QuoteIdent(c.Name)
	switch kindOf(&c) {
	case kFloat:
		return "HEX(CAST(CAST(" + q + " AS DOUBLE) AS CHAR))"
	case kEnum, kSet:
		return "CONCAT(" + q + "+0, ':', HEX(" + q + "))"
	case kBit, kInt:
		return "HEX(" + q + ")"
	case kBinary, kString:
		return "CONCAT(LENGTH(" + q + "), ':', HEX(" + q + "))"
	}
	return "HEX(CAST(" + q + " AS CHAR))"
}

// TestIntegrationTypesRoundTrip reads a table with every type and its edge
// values through both entrances (a text-protocol SELECT, with parseTime off
// and on, and go-mysql's BinlogSyncer on the inserts), encodes each row as
// Debezium would, decodes it, writes it into a table of the same DDL (with
// interpolated and with prepared parameters) and compares every column of
// every row with the source, exactly.
func TestIntegrationTypesRoundTrip(t *testing.T) {
	const params = "?time_zone=%27%2B00%3A00%27"
	admin := typesDB(t, params)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	database := "it_types_" + hex.EncodeToString(rb[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+database+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec("DROP DATABASE IF EXISTS " + database) })
	ddl := "(id INT NOT NULL PRIMARY KEY, " + strings.Join(typesColumns, ", ") + ") CHARACTER SET utf8mb4"
	for _, table := range []string{"src", "dst"} {
		if _, err := admin.ExecContext(ctx, "CREATE TABLE "+database+"."+table+" "+ddl); err != nil {
			t.Fatal(err)
		}
	}
	cols, err := ReadColumns(ctx, admin, database, "src")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if err := CheckType(c); err != nil {
			t.Fatal(err)
		}
	}

	file, pos, ok, err := BinlogStatus(ctx, admin, "SHOW MASTER STATUS")
	if err != nil || !ok {
		t.Fatalf("binlog position: %v (binlog on: %v)", err, ok)
	}
	for i, r := range typesRows {
		names, lits := []string{"id"}, []string{strconv.Itoa(i + 1)}
		for _, c := range cols[1:] {
			if lit, ok := r[c.Name]; ok {
				names, lits = append(names, c.Name), append(lits, lit)
			}
		}
		q := "INSERT INTO " + database + ".src (" + strings.Join(names, ",") + ") VALUES (" + strings.Join(lits, ",") + ")"
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("row %d: %v", i+1, err)
		}
	}

	// The text entrance, with parseTime off (exact) and on (the product's DSN).
	textRows := func(params string) [][]Value {
		db := typesDB(t, params)
		exprs := make([]string, len(cols))
		for i, c := range cols {
			if exprs[i], err = SelectExpr(c); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(exprs, ",")+" FROM "+database+".src ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		raw := make([]sql.RawBytes, len(cols))
		dest := make([]any, len(cols))
		for i := range raw {
			dest[i] = &raw[i]
		}
		var out [][]Value
		var buf []byte
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			vals := make([]Value, len(cols))
			for i, c := range cols {
				if buf, vals[i], err = AppendText(buf, c, raw[i]); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	fromText := textRows(params)
	fromParseTime := textRows(params + "&parseTime=true&loc=UTC")
	fromBinlog := binlogRows(ctx, t, database, cols, file, pos, len(typesRows), true)
	fromBinlogStrings := binlogRows(ctx, t, database, cols, file, pos, len(typesRows), false)

	// Every entrance carries the same canonical text.
	for name, rows := range map[string][][]Value{
		"parseTime=true": fromParseTime, "binlog": fromBinlog, "binlog ParseTime=false": fromBinlogStrings,
	} {
		for r := range fromText {
			for i, c := range cols {
				a, b := fromText[r][i], rows[r][i]
				if a.Null != b.Null || !bytes.Equal(a.B, b.B) {
					t.Errorf("row id=%d column %s (%s): text %q (null %v), %s %q (null %v)", r+1, c.Name, c.ColumnType, a.B, a.Null, name, b.B, b.Null)
				}
			}
		}
	}

	tb := rowTable(cols)
	for _, path := range []struct {
		name string
		rows [][]Value
	}{{"text", fromText}, {"binlog", fromBinlog}} {
		for _, mode := range []string{"&interpolateParams=true", ""} {
			t.Run(path.name+mode, func(t *testing.T) {
				w := typesDB(t, params+mode)
				if _, err := w.ExecContext(ctx, "TRUNCATE TABLE "+database+".dst"); err != nil {
					t.Fatal(err)
				}
				names := make([]string, len(cols))
				marks := make([]string, len(cols))
				for i, c := range cols {
					names[i], marks[i] = c.Name, "?"
				}
				ins := "INSERT INTO " + database + ".dst (" + strings.Join(names, ",") + ") VALUES (" + strings.Join(marks, ",") + ")"
				for r, vals := range path.rows {
					// Through the envelope: encode as Debezium, decode back.
					rec, err := AppendChange(nil, tb, &Change{Op: OpCreate, After: vals, Source: rowSource(tb)})
					if err != nil {
						t.Fatalf("row id=%d: %v", r+1, err)
					}
					var c Change
					if _, err := ParseChange(nil, tb, rec, &c); err != nil {
						t.Fatalf("row id=%d: %v\n%s", r+1, err, rec)
					}
					back := c.After
					args := make([]any, len(cols))
					for i, c := range cols {
						if back[i].Null != vals[i].Null || !bytes.Equal(back[i].B, vals[i].B) {
							t.Errorf("row id=%d column %s: envelope gave %q, want %q", r+1, c.Name, back[i].B, vals[i].B)
						}
						if args[i], err = Arg(c, back[i]); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := w.ExecContext(ctx, ins, args...); err != nil {
						t.Fatalf("row id=%d: insert: %v", r+1, err)
					}
				}
				compareTables(ctx, t, w, database, cols)
			})
		}
	}
}

// compareTables fails naming the row and column of every stored value of
// dst that differs from src.
func compareTables(ctx context.Context, t *testing.T, db *sql.DB, database string, cols []Column) {
	t.Helper()
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = compareExpr(c)
	}
	read := func(table string) [][]sql.NullString {
		rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(exprs, ",")+" FROM "+database+"."+table+" ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out [][]sql.NullString
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			out = append(out, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	src, dst := read("src"), read("dst")
	if len(src) != len(dst) {
		t.Fatalf("source has %d rows, target %d", len(src), len(dst))
	}
	for r := range src {
		for i, c := range cols {
			if src[r][i] != dst[r][i] {
				t.Errorf("row %d column %s (%s): source %v, target %v (%s)", r+1, c.Name, c.ColumnType, src[r][i], dst[r][i], exprs[i])
			}
		}
	}
}

// binlogRows streams the binlog from file:pos and returns the first n
// inserted rows of database.src, each value through AppendBinlog; with
// parseTime false go-mysql hands temporal values over as strings.
func binlogRows(ctx context.Context, t *testing.T, database string, cols []Column, file string, pos uint64, n int, parseTime bool) [][]Value {
	t.Helper()
	cfg, err := driver.ParseDSN(os.Getenv("SLUICE_TEST_MYSQL_DSN"))
	if err != nil {
		t.Fatal(err)
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	var id [4]byte
	_, _ = rand.Read(id[:])
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:                binary.BigEndian.Uint32(id[:]) | 1<<30 + 1,
		Flavor:                  "mariadb",
		Host:                    host,
		Port:                    uint16(port),
		User:                    cfg.User,
		Password:                cfg.Passwd,
		ParseTime:               parseTime,
		TimestampStringLocation: time.UTC,
		Logger:                  slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	streamer, err := syncer.StartSync(mysql.Position{Name: file, Pos: uint32(pos)})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]Value
	var buf []byte
	for len(out) < n {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			t.Fatalf("binlog after %d of %d rows: %v", len(out), n, err)
		}
		re, ok := ev.Event.(*replication.RowsEvent)
		if !ok || string(re.Table.Schema) != database || string(re.Table.Table) != "src" {
			continue
		}
		if err := ElementsFromBinlog(cols, re.Table.EnumStrValueMap(), re.Table.SetStrValueMap()); err != nil {
			t.Fatal(err)
		}
		for _, row := range re.Rows {
			if len(row) != len(cols) {
				t.Fatalf("binlog row of %d columns, table has %d", len(row), len(cols))
			}
			vals := make([]Value, len(cols))
			for i, c := range cols {
				if buf, vals[i], err = AppendBinlog(buf, c, row[i]); err != nil {
					t.Fatalf("binlog row %d: %v", len(out)+1, err)
				}
			}
			out = append(out, vals)
		}
	}
	return out
}

// TestIntegrationHandWrittenDebeziumRowLands writes a row as Debezium's
// documentation says the connector encodes it, by hand, through
// ParseChange and Arg into a table, and compares it with the same row
// inserted from SQL literals.
func TestIntegrationHandWrittenDebeziumRowLands(t *testing.T) {
	const params = "?time_zone=%27%2B00%3A00%27&interpolateParams=true"
	db := typesDB(t, params)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	database := "it_dbz_" + hex.EncodeToString(rb[:])
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+database+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec("DROP DATABASE IF EXISTS " + database) })
	ddl := `(id INT NOT NULL PRIMARY KEY, biu BIGINT UNSIGNED, dec52 DECIMAL(5,2), dec65 DECIMAL(65,30), f FLOAT, d DOUBLE,
		vc VARCHAR(20), bn BINARY(4), bl BLOB, b1 BIT(1), b10 BIT(10), y YEAR, dt DATE, dt0 DATETIME, dt6 DATETIME(6),
		ts3 TIMESTAMP(3) NULL DEFAULT NULL, tm TIME, j JSON, e ENUM('a','b'), s SET('x','y','z'), n INT)`
	for _, table := range []string{"src", "dst"} {
		if _, err := db.ExecContext(ctx, "CREATE TABLE "+database+"."+table+" "+ddl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO `+database+`.src VALUES (1, 18446744073709551615, -123.45,
		99999999999999999999999999999999999.999999999999999999999999999999, 3.14159274, 0.1, 'hé😀', X'61000000', X'00FFFE',
		b'1', b'1000000001', 2024, '2024-01-02', '2018-06-20 06:37:03', '1969-12-31 23:59:59.999999', '2018-06-20 13:37:03.120',
		'-838:59:59', '{"a": 1}', 'b', 'x,z', NULL)`); err != nil {
		t.Fatal(err)
	}
	row := `{"id":1,"biu":-1,"dec52":"z8c=","dec65":"APMWJxx/w5CKi+9GTjlF73olNgn//////////w==","f":3.1415927,"d":0.1,
		"vc":"h\u00e9\ud83d\ude00","bn":"YQAAAA==","bl":"AP/+","b1":true,"b10":"AQI=","y":2024,"dt":19724,"dt0":1529476623000,
		"dt6":-1,"ts3":"2018-06-20T06:37:03.12-07:00","tm":-3020399000000,"j":"{\"a\": 1}","e":"b","s":"x,z","n":null}`
	cols, err := ReadColumns(ctx, db, database, "dst")
	if err != nil {
		t.Fatal(err)
	}
	var c Change
	if _, err := ParseChange(nil, rowTable(cols), afterRecord(rowTable(cols), row), &c); err != nil {
		t.Fatal(err)
	}
	vals := c.After
	args := make([]any, len(cols))
	marks := make([]string, len(cols))
	for i, c := range cols {
		if args[i], err = Arg(c, vals[i]); err != nil {
			t.Fatal(err)
		}
		marks[i] = "?"
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+database+".dst VALUES ("+strings.Join(marks, ",")+")", args...); err != nil {
		t.Fatal(err)
	}
	compareTables(ctx, t, db, database, cols)
}
