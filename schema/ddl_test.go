package schema

import (
	"strings"
	"testing"
)

func TestCreateTargetDDL(t *testing.T) {
	col := func(name, dt, ct string, null bool) TableColumn {
		c := Column{Name: name, DataType: dt, ColumnType: ct, Nullable: null}
		if dt == "varchar" || dt == "text" {
			c.Charset, c.Collation = "utf8mb4", "utf8mb4_bin"
		}
		return TableColumn{Source: c, Target: c}
	}
	b := col("b", "timestamp", "timestamp(3)", false)
	b.Target.Precision = 3
	tb := &Table{Target: TableName{DB: "d", Table: "t"}, Create: true, Key: []int{0, 1},
		Columns: []TableColumn{col("a", "varchar", "varchar(10)", false), b,
			col("c", "timestamp", "timestamp", true), col("d", "text", "text", true)}}
	ddl, err := CreateTargetDDL(tb)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CREATE TABLE IF NOT EXISTS `d`.`t`", "`a` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
		"`b` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)", "`c` timestamp NULL DEFAULT NULL", "`d` text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL",
		"`source_version` BIGINT UNSIGNED NULL", "`loaded_at` DATETIME(6) NULL", "PRIMARY KEY (`a`, `b`)"} {
		if !strings.Contains(ddl, want) {
			t.Errorf("DDL lacks %q:\n%s", want, ddl)
		}
	}
	ts, err := TombstoneDDL(tb)
	if err != nil || !strings.Contains(ts, "`d`.`t_tombstones`") || !strings.Contains(ts, "PRIMARY KEY (`a`, `b`)") {
		t.Errorf("tombstones DDL: %v\n%s", err, ts)
	}
	tb.Key = []int{3}
	if _, err := CreateTargetDDL(tb); err == nil || !strings.Contains(err.Error(), "column d is text") {
		t.Errorf("a TEXT key: %v, want an error naming the column", err)
	}
}
