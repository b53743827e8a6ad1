package tail

import "testing"

func TestClassifyStatement(t *testing.T) {
	const db, table = "source_db", "raw_records"
	for _, tc := range []struct {
		name    string
		session string // the event's default database
		query   string
		want    stmtEffect
		dml     bool
	}{
		{"insert unqualified", db, "INSERT INTO raw_records (date) VALUES ('2025-10-01')", stmtDML, true},
		{"insert qualified, other session db", "other", "insert into `source_db`.`raw_records` values (1)", stmtDML, true},
		{"insert modifiers, no INTO", db, "INSERT LOW_PRIORITY IGNORE raw_records SET date = '2025-10-01'", stmtDML, true},
		{"insert into another table", db, "INSERT INTO audit SELECT * FROM raw_records", stmtNone, true},
		{"insert into the table of another db", "other", "INSERT INTO raw_records VALUES (1)", stmtNone, true},
		{"replace", db, "REPLACE INTO Raw_Records VALUES (1)", stmtDML, true},
		{"update", db, "UPDATE raw_records SET message = 'x' WHERE id = 3", stmtDML, true},
		{"update multi-table", db, "UPDATE other o JOIN source_db.raw_records r ON r.id = o.id SET o.x = r.message", stmtDML, true},
		{"update another table reading it", db, "UPDATE other SET x = (SELECT COUNT(*) FROM raw_records)", stmtNone, true},
		{"delete", db, "DELETE FROM raw_records WHERE id < 10", stmtDML, true},
		{"delete multi-table", db, "DELETE r FROM raw_records r JOIN other o USING (id)", stmtDML, true},
		{"delete of another table reading it", db, "DELETE FROM other WHERE id IN (SELECT id FROM raw_records)", stmtNone, true},
		{"delete after a leading comment", db, "/* app */ -- why\n DELETE FROM raw_records", stmtDML, true},
		{"load data", db, "LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE raw_records FIELDS TERMINATED BY ','", stmtDML, true},
		{"load data elsewhere", db, "LOAD DATA INFILE '/tmp/raw_records' INTO TABLE other", stmtNone, true},
		{"with update", db, "WITH c AS (SELECT 1) UPDATE raw_records SET x = 1", stmtDML, true},
		{"with select", db, "WITH c AS (SELECT * FROM raw_records) SELECT * FROM c", stmtNone, false},
		{"executable comment", db, "/*!40000 DELETE FROM raw_records */", stmtDML, true},
		{"name in a string only", db, "INSERT INTO other VALUES ('raw_records')", stmtNone, true},
		{"truncate", db, "TRUNCATE TABLE raw_records", stmtTruncate, false},
		{"truncate qualified, no TABLE", "", "truncate `source_db`.raw_records", stmtTruncate, false},
		{"truncate another table", db, "TRUNCATE TABLE raw_records_old", stmtNone, false},
		{"truncate partition", db, "ALTER TABLE raw_records TRUNCATE PARTITION p1", stmtPartition, false},
		{"exchange partition into it", db, "ALTER TABLE staging EXCHANGE PARTITION p0 WITH TABLE raw_records", stmtPartition, false},
		{"alter add column: a shape change, no DML", db, "ALTER TABLE raw_records ADD COLUMN x INT", stmtShape, false},
		{"create table like it: conservatively a shape change, no DML", db, "CREATE TABLE raw_records_copy LIKE raw_records", stmtShape, false},
		{"begin", db, "BEGIN", stmtNone, false},
		{"empty", db, "  ", stmtNone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, dml := classifyStatement(tc.query, tc.session, db, table)
			if got != tc.want || dml != tc.dml {
				t.Errorf("classifyStatement(%q) = %d, dml %v; want %d, dml %v", tc.query, got, dml, tc.want, tc.dml)
			}
		})
	}
}
