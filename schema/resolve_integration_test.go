package schema_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/sluice-dev/sluice/schema"
)

// resolveEnv is a fresh source and target database on the project's
// MariaDB, created as `sluice migrate` creates them, plus the tables of
// the other shapes; with SLUICE_REQUIRE_INTEGRATION=1 or CI=true a missing
// server fails the test.
type resolveEnv struct {
	db       *sql.DB
	src, dst string
	rc       schema.ResolveConfig
}

func newResolveEnv(t *testing.T) *resolveEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	required := os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1" || os.Getenv("CI") == "true"
	fail := func(err error) {
		t.Helper()
		if required {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dsn := os.Getenv("SLUICE_TEST_MYSQL_DSN")
	if dsn == "" {
		fail(errors.New("SLUICE_TEST_MYSQL_DSN is not set"))
	}
	db, err := sql.Open("mysql", dsn+"?parseTime=true&loc=UTC&time_zone=%27%2B00%3A00%27&multiStatements=true")
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		fail(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e := &resolveEnv{db: db, src: "it_rsrc_" + id, dst: "it_rdst_" + id}
	e.rc = schema.ResolveConfig{SourceDB: e.src, TargetDB: e.dst, TopicPrefix: "sluice"}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE IF EXISTS " + e.src)
		db.Exec("DROP DATABASE IF EXISTS " + e.dst)
		db.Close()
	})
	ctx := context.Background()
	if err := schema.MigrateSource(ctx, db, e.src); err != nil {
		t.Fatal(err)
	}
	if err := schema.MigrateTarget(ctx, db, e.dst); err != nil {
		t.Fatal(err)
	}
	e.exec(t, `
CREATE TABLE {src}.readings (
  id       BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  site     CHAR(4) NOT NULL,
  sensor   SMALLINT UNSIGNED NOT NULL,
  seq      INT NOT NULL,
  reading  DECIMAL(10,3),
  taken_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY (site, sensor, seq));
CREATE TABLE {dst}.readings (
  site     CHAR(4) NOT NULL,
  sensor   INT UNSIGNED NOT NULL,
  seq      BIGINT NOT NULL,
  reading  DECIMAL(12,3),
  taken_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  source_id BIGINT UNSIGNED NULL, source_version BIGINT UNSIGNED NULL, loaded_at DATETIME(6) NULL,
  PRIMARY KEY (site, sensor, seq));
CREATE TABLE {src}.customers (
  id        INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email     VARCHAR(255) NOT NULL,
  phone     VARCHAR(32),
  ssn       CHAR(11),
  full_name VARCHAR(100) NOT NULL,
  signed_up DATETIME NOT NULL,
  UNIQUE KEY (email));
CREATE TABLE {dst}.customers (
  id        INT UNSIGNED NOT NULL PRIMARY KEY,
  email     CHAR(64) NOT NULL,
  phone     VARCHAR(32),
  name      VARCHAR(100) NOT NULL,
  signed_up DATETIME NOT NULL,
  UNIQUE KEY (email));
CREATE TABLE {src}.wide (
  id   BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  code VARCHAR(255) NOT NULL,
  n    BIGINT NOT NULL,
  u    INT UNSIGNED NOT NULL,
  a    INT NOT NULL,
  b    INT NOT NULL,
  k    INT,
  note VARCHAR(10));
CREATE TABLE {dst}.wide (
  id   BIGINT UNSIGNED NOT NULL,
  code VARCHAR(10) NOT NULL,
  n    INT NOT NULL,
  u    INT NOT NULL,
  a    INT NOT NULL,
  b    INT NOT NULL,
  k    INT,
  note VARCHAR(10) NOT NULL,
  UNIQUE KEY ua (a), UNIQUE KEY ub (b), UNIQUE KEY uk (k));
CREATE TABLE {src}.odd (
  id   BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  pt   POINT,
  l1   VARCHAR(20) CHARACTER SET latin1,
  note VARCHAR(20));
CREATE TABLE {dst}.odd (
  id   BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  pt   POINT,
  l1   VARCHAR(20) CHARACTER SET latin1,
  note VARCHAR(20),
  source_id BIGINT UNSIGNED NULL, source_version BIGINT UNSIGNED NULL, loaded_at DATETIME(6) NULL);
INSERT INTO {src}.raw_records (date, timestamp, device_type, event_type, message) VALUES ('2025-10-01', '2025-10-01 10:00:00', 'sensor', 'open', 'hi');
INSERT INTO {src}.customers (email, phone, ssn, full_name, signed_up) VALUES ('ann@example.com', '+33612345678', '123-45-6789', 'Ann', '2025-10-01 10:00:00');`)
	return e
}

func (e *resolveEnv) exec(t *testing.T, stmts string) {
	t.Helper()
	stmts = strings.NewReplacer("{src}", e.src, "{dst}", e.dst).Replace(stmts)
	if _, err := e.db.Exec(stmts); err != nil {
		t.Fatalf("%v\n%s", err, stmts)
	}
}

// iotSpec is the shipped example's IoT table: today's pipeline as a spec.
func (e *resolveEnv) iotSpec() schema.TableSpec {
	return schema.TableSpec{
		Source:     e.src + ".raw_records",
		Target:     e.dst + ".records",
		ID:         "id",
		Window:     "timestamp",
		Key:        []string{"device_type", "event_type", "timestamp"},
		Columns:    schema.ColumnsSpec{Exclude: []string{"id"}},
		Transforms: map[string][]schema.TransformSpec{"message": {{Name: "upper"}}},
		Rules:      map[string]schema.RuleSpec{"device_type": {Required: true}, "event_type": {Required: true}},
		Topic:      "sluice.raw_records",
	}
}

func (e *resolveEnv) piiSpec() schema.TableSpec {
	return schema.TableSpec{
		Source:  "customers", // in the source DSN's database
		Window:  "signed_up",
		Columns: schema.ColumnsSpec{Exclude: []string{"ssn"}, Rename: map[string]string{"full_name": "name"}},
		Transforms: map[string][]schema.TransformSpec{
			"email": {{Name: "trim"}, {Name: "lower"}, {Name: "hash", Key: []byte("Jefe"), KeyName: "PII_HASH_KEY"}},
			"phone": {{Name: "mask", Keep: 4}},
		},
		Rules: map[string]schema.RuleSpec{"email": {Required: true, MaxLength: 64}},
	}
}

func targetNames(tb *schema.Table) []string {
	var out []string
	for _, c := range tb.Columns {
		out = append(out, c.Source.Name+">"+c.Target.Name)
	}
	return out
}

func keyNames(tb *schema.Table) string {
	var out []string
	for _, c := range tb.KeyColumns() {
		out = append(out, c.Target.Name)
	}
	return strings.Join(out, ",")
}

func TestIntegrationResolveTables(t *testing.T) {
	e := newResolveEnv(t)
	ctx := context.Background()
	tables, err := schema.ResolveAll(ctx, []schema.TableSpec{e.iotSpec(), {Source: e.src + ".readings", Window: "taken_at", Columns: schema.ColumnsSpec{Exclude: []string{"id"}}}, e.piiSpec()}, e.db, e.db, e.rc)
	if err != nil {
		t.Fatal(err)
	}
	iot, readings, pii := tables[0], tables[1], tables[2]

	t.Run("iot", func(t *testing.T) {
		want := "date>date timestamp>timestamp device_type>device_type event_type>event_type message>message created_at>created_at updated_at>updated_at"
		if got := strings.Join(targetNames(iot), " "); got != want {
			t.Errorf("columns %s, want %s", got, want)
		}
		if keyNames(iot) != "device_type,event_type,timestamp" || iot.KeyIndex != "uniq_dedupe" {
			t.Errorf("key %s (%s)", keyNames(iot), iot.KeyIndex)
		}
		if iot.ID.Name != "id" || !iot.ID.Unsigned || iot.Window == nil || iot.Window.Name != "timestamp" || iot.Topic != "sluice.raw_records" {
			t.Errorf("id %+v window %+v topic %s", iot.ID, iot.Window, iot.Topic)
		}
		msg := iot.Columns[4]
		v, null, err := msg.Apply([]byte("door opened ɐ"), false)
		if err != nil || null || string(v) != "DOOR OPENED Ɐ" {
			t.Errorf("message: %q %v %v", v, null, err)
		}
		// the target's TEXT holds 65,535 bytes, whatever the characters
		if _, _, err := msg.Apply([]byte(strings.Repeat("é", 32768)), false); !errors.Is(err, schema.ErrRule) || !strings.Contains(err.Error(), "65536 bytes, over 65535") {
			t.Errorf("an over-long message: %v", err)
		}
		var re *schema.RuleError
		if _, _, err := iot.Columns[2].Apply([]byte(""), false); !errors.As(err, &re) || re.Rule != "required" || re.Column != "device_type" || re.Table != e.src+".raw_records" {
			t.Errorf("empty device_type: %v", err)
		}
		if _, _, err := iot.Columns[0].Apply([]byte("0999-12-31"), false); !errors.As(err, &re) || re.Rule != "min" || re.Column != "date" {
			t.Errorf("date before year 1000: %v", err)
		}
	})

	t.Run("default key and id", func(t *testing.T) {
		s := e.iotSpec()
		s.Key, s.ID = nil, ""
		tb, err := schema.Resolve(ctx, s, e.db, e.db, e.rc)
		if err != nil {
			t.Fatal(err)
		}
		// the target's primary key (id) does not travel: its one unique key does
		if keyNames(tb) != "device_type,event_type,timestamp" || tb.ID.Name != "id" {
			t.Errorf("key %s id %s", keyNames(tb), tb.ID.Name)
		}
		s.Columns.Exclude = nil
		if tb, err = schema.Resolve(ctx, s, e.db, e.db, e.rc); err != nil {
			t.Fatal(err)
		}
		if keyNames(tb) != "id" || tb.KeyIndex != "PRIMARY" {
			t.Errorf("with id traveling, key %s (%s), want the primary key", keyNames(tb), tb.KeyIndex)
		}
	})

	t.Run("composite non-time key", func(t *testing.T) {
		if keyNames(readings) != "site,sensor,seq" || readings.KeyIndex != "PRIMARY" {
			t.Errorf("key %s (%s)", keyNames(readings), readings.KeyIndex)
		}
		if readings.ID.Name != "id" || readings.Window.DataType != "timestamp" {
			t.Errorf("id %s window %+v", readings.ID.Name, readings.Window)
		}
		if got := readings.Target.String(); got != e.dst+".readings" {
			t.Errorf("default target %s", got)
		}
		if got := readings.Topic; got != "sluice."+e.src+".readings" {
			t.Errorf("default topic %s", got)
		}
		if got := strings.Join(targetNames(readings), " "); got != "site>site sensor>sensor seq>seq reading>reading taken_at>taken_at" {
			t.Errorf("columns %s", got)
		}
	})

	t.Run("personal data", func(t *testing.T) {
		if got := strings.Join(targetNames(pii), " "); got != "id>id email>email phone>phone full_name>name signed_up>signed_up" {
			t.Errorf("columns %s", got)
		}
		if strings.Join(pii.Dropped, ",") != "ssn" || strings.Join(iot.Dropped, ",") != "id" {
			t.Errorf("dropped: %v and %v", pii.Dropped, iot.Dropped)
		}
		if keyNames(pii) != "id" || pii.Source.String() != e.src+".customers" || pii.Target.String() != e.dst+".customers" {
			t.Errorf("key %s source %s target %s", keyNames(pii), pii.Source, pii.Target)
		}
		email, phone := pii.Columns[1], pii.Columns[2]
		a, _, err := email.Apply([]byte(" Ann@Example.com "), false)
		if err != nil || len(a) != 64 {
			t.Fatalf("email: %q %v", a, err)
		}
		b, _, _ := email.Apply([]byte("ann@example.com"), false)
		if string(a) != string(b) {
			t.Errorf("trim and lower before hash: %s vs %s", a, b)
		}
		if v, _, _ := phone.Apply([]byte("+33612345678"), false); string(v) != "********5678" {
			t.Errorf("phone: %s", v)
		}
		if _, _, err := email.Apply(nil, true); !errors.Is(err, schema.ErrRule) {
			t.Errorf("NULL email: %v", err)
		}
	})
}

// TestIntegrationResolveBadConfig: each bad configuration fails with a
// *ConfigError naming the table and the field, and nothing in either
// database changes.
func TestIntegrationResolveBadConfig(t *testing.T) {
	e := newResolveEnv(t)
	ctx := context.Background()
	before := e.fingerprint(t)
	iot := e.iotSpec
	with := func(s schema.TableSpec, f func(*schema.TableSpec)) []schema.TableSpec {
		f(&s)
		return []schema.TableSpec{s}
	}
	wide := func(cols ...string) schema.TableSpec {
		return schema.TableSpec{Source: "wide", Key: []string{"a"}, Columns: schema.ColumnsSpec{Include: append([]string{"id", "a"}, cols...)}}
	}
	tests := []struct {
		name  string
		specs []schema.TableSpec
		table string // the table the error names
		field string
		want  string // a part of the message
	}{
		{name: "unknown source column in key", specs: with(iot(), func(s *schema.TableSpec) { s.Key = []string{"device_type", "kind"} }),
			field: "key", want: `column "kind" is not in the source`},
		{name: "unknown column in rename", specs: with(iot(), func(s *schema.TableSpec) { s.Columns.Rename = map[string]string{"msg": "message"} }),
			field: "columns.rename.msg", want: `"msg" is not in the source`},
		{name: "unknown column in transform", specs: with(iot(), func(s *schema.TableSpec) {
			s.Transforms = map[string][]schema.TransformSpec{"mesage": {{Name: "upper"}}}
		}), field: "transforms.mesage", want: "not in the source"},
		{name: "unknown column in rule", specs: with(iot(), func(s *schema.TableSpec) { s.Rules = map[string]schema.RuleSpec{"devicetype": {Required: true}} }),
			field: "rules.devicetype", want: "not in the source"},
		{name: "unknown column in exclude", specs: with(iot(), func(s *schema.TableSpec) { s.Columns.Exclude = []string{"ID", "nope"} }),
			field: "columns.exclude", want: `"nope"`},
		{name: "target name used for a source column", specs: []schema.TableSpec{func() schema.TableSpec {
			s := e.piiSpec()
			s.Rules = map[string]schema.RuleSpec{"name": {Required: true}}
			return s
		}()}, table: "customers", field: "rules.name", want: `target name of "full_name"`},
		{name: "key not unique in the target", specs: with(iot(), func(s *schema.TableSpec) { s.Key = []string{"device_type", "event_type"} }),
			field: "key", want: "(device_type, event_type) is not unique in the target"},
		{name: "key column does not travel", specs: with(iot(), func(s *schema.TableSpec) { s.Key = []string{"id"} }),
			field: "key", want: `"id" does not travel`},
		{name: "transform on a column that does not travel", specs: with(iot(), func(s *schema.TableSpec) { s.Columns.Exclude = []string{"id", "message"} }),
			field: "transforms.message", want: "does not travel"},
		{name: "rule on a column that does not travel", specs: with(iot(), func(s *schema.TableSpec) { s.Columns.Exclude = []string{"id", "device_type"} }),
			field: "rules.device_type", want: "does not travel"},
		{name: "window not a time", specs: with(iot(), func(s *schema.TableSpec) { s.Window = "device_type" }),
			field: "window", want: "varchar(255), not DATE, DATETIME or TIMESTAMP"},
		{name: "id not an integer", specs: with(iot(), func(s *schema.TableSpec) { s.ID = "timestamp" }),
			field: "id", want: "datetime, not an integer type"},
		{name: "two tables write one target", specs: []schema.TableSpec{e.iotSpec(), func() schema.TableSpec {
			s := e.iotSpec()
			s.Topic = "other"
			return s
		}()}, field: "target", want: "two tables cannot write one target table"},
		{name: "two tables write one target by default", specs: []schema.TableSpec{{Source: "readings"}, {Source: "wide", Target: "readings"}},
			table: "wide", field: "target", want: e.dst + ".readings is also the target of table readings"},
		{name: "missing target column", specs: with(iot(), func(s *schema.TableSpec) { s.Columns.Rename = map[string]string{"message": "msg"} }),
			field: "columns.rename.message", want: "has no column msg"},
		{name: "missing target table", specs: with(iot(), func(s *schema.TableSpec) { s.Target = "nowhere" }),
			field: "target", want: e.dst + ".nowhere does not exist"},
		{name: "lineage column written", specs: with(iot(), func(s *schema.TableSpec) { s.Columns.Rename = map[string]string{"message": "source_version"} }),
			field: "columns.rename.message", want: "lineage column"},
		{name: "varchar(10) from varchar(255)", specs: []schema.TableSpec{wide("code")}, table: "wide", field: "columns.code",
			want: "target type varchar(10) (" + e.dst + ".wide.code) cannot hold source type varchar(255)"},
		{name: "int from bigint", specs: []schema.TableSpec{wide("n")}, table: "wide", field: "columns.n", want: "target type int(11) (" + e.dst + ".wide.n) cannot hold source type bigint(20)"},
		{name: "signed from unsigned", specs: []schema.TableSpec{wide("u")}, table: "wide", field: "columns.u", want: "cannot hold source type int(10) unsigned"},
		{name: "nullable key column", specs: []schema.TableSpec{func() schema.TableSpec {
			s := wide("k")
			s.Key = []string{"k"}
			return s
		}()}, table: "wide", field: "key", want: `column "k" is nullable in the target ` + e.dst + ".wide"},
		{name: "nullable into NOT NULL", specs: []schema.TableSpec{wide("note")}, table: "wide", field: "columns.note", want: "NOT NULL and the source column is nullable"},
		{name: "ambiguous default key", specs: []schema.TableSpec{{Source: "wide", Columns: schema.ColumnsSpec{Include: []string{"id", "a", "b"}}}}, table: "wide",
			field: "key", want: "several unique keys whose columns all travel: ua (a), ub (b)"},
		{name: "hash into a short column", specs: with(iot(), func(s *schema.TableSpec) {
			s.Transforms = map[string][]schema.TransformSpec{"device_type": {{Name: "hash", Key: []byte("k")}}}
			s.Columns.Exclude = []string{"id"}
		}), field: "", want: ""}, // varchar(255) holds a hash's 64 hex digits: not an error
		{name: "upper on a number", specs: []schema.TableSpec{func() schema.TableSpec {
			s := wide()
			s.Transforms = map[string][]schema.TransformSpec{"a": {{Name: "upper"}}}
			return s
		}()}, table: "wide", field: "transforms.a[0]", want: "upper applies to character columns"},
		{name: "max_length on a number", specs: []schema.TableSpec{func() schema.TableSpec {
			s := wide()
			s.Rules = map[string]schema.RuleSpec{"a": {MaxLength: 3}}
			return s
		}()}, table: "wide", field: "rules.a.max_length", want: "character and binary columns"},
		{name: "time range on a string", specs: with(iot(), func(s *schema.TableSpec) { s.Rules = map[string]schema.RuleSpec{"message": {Min: "2020-01-01"}} }),
			field: "rules.message.min", want: "DATE, DATETIME and TIMESTAMP"},
		{name: "bad time bound", specs: with(iot(), func(s *schema.TableSpec) { s.Rules = map[string]schema.RuleSpec{"timestamp": {Max: "tomorrow"}} }),
			field: "rules.timestamp.max", want: `"tomorrow" is not a time`},
		{name: "unsupported type", specs: []schema.TableSpec{{Source: "odd", Columns: schema.ColumnsSpec{Exclude: []string{"l1"}}}}, table: "odd", field: "columns",
			want: "column pt: type point is not supported in the source odd; exclude the column"},
		{name: "character set not UTF-8", specs: []schema.TableSpec{{Source: "odd", Columns: schema.ColumnsSpec{Exclude: []string{"pt"}}}}, table: "odd", field: "columns",
			want: "column l1: character set latin1 is not supported"},
		{name: "unsupported columns excluded", specs: []schema.TableSpec{{Source: "odd", Columns: schema.ColumnsSpec{Exclude: []string{"pt", "l1"}}}}, field: "", want: ""},
		{name: "constant does not fit", specs: []schema.TableSpec{func() schema.TableSpec {
			s := wide()
			s.Transforms = map[string][]schema.TransformSpec{"a": {{Name: "constant", Value: "none"}}}
			return s
		}()}, table: "wide", field: "transforms.a", want: `"none" is not a value of int(11)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schema.ResolveAll(ctx, tc.specs, e.db, e.db, e.rc)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			table := tc.table
			if table == "" {
				table = e.src + ".raw_records"
			}
			var ce *schema.ConfigError
			if !errors.As(err, &ce) || ce.Table != table || ce.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant a ConfigError of table %s, field %s, with %q", err, table, tc.field, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "table "+table+": "+tc.field+": ") {
				t.Errorf("the message does not start with the table and the field: %v", err)
			}
		})
	}
	if after := e.fingerprint(t); after != before {
		t.Errorf("the databases changed:\nbefore %s\nafter  %s", before, after)
	}
}

// fingerprint is every table of both test databases with its row count and
// checksum.
func (e *resolveEnv) fingerprint(t *testing.T) string {
	t.Helper()
	rows, err := e.db.Query(`SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (?, ?) ORDER BY 1`, e.src, e.dst)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	var b strings.Builder
	for _, n := range names {
		var table string
		var sum sql.NullInt64
		if err := e.db.QueryRow("CHECKSUM TABLE "+n).Scan(&table, &sum); err != nil {
			t.Fatal(err)
		}
		b.WriteString(n + "=" + hex.EncodeToString([]byte{byte(sum.Int64), byte(sum.Int64 >> 8), byte(sum.Int64 >> 16), byte(sum.Int64 >> 24)}) + " ")
	}
	return b.String()
}
