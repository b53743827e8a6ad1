package schema

import (
	"strings"
	"testing"
)

func TestCanHold(t *testing.T) {
	col := func(dataType, columnType string, f func(*Column)) Column {
		c := Column{Name: "c", DataType: dataType, ColumnType: columnType, Charset: "utf8mb4"}
		if strings.Contains(columnType, "unsigned") {
			c.Unsigned = true
		}
		if f != nil {
			f(&c)
		}
		return c
	}
	length := func(n int64) func(*Column) { return func(c *Column) { c.Length = n } }
	prec := func(p, s int) func(*Column) { return func(c *Column) { c.Precision, c.Scale = p, s } }
	tests := []struct {
		name   string
		target Column
		source Column
		fail   string // "" holds; else a part of the reason
	}{
		{name: "int into bigint", target: col("bigint", "bigint(20)", nil), source: col("int", "int(11)", nil)},
		{name: "bigint into int", target: col("int", "int(11)", nil), source: col("bigint", "bigint(20)", nil), fail: "32-bit integer cannot hold"},
		{name: "unsigned into signed same width", target: col("int", "int(11)", nil), source: col("int", "int(10) unsigned", nil), fail: "above 2147483647"},
		{name: "unsigned into wider signed", target: col("bigint", "bigint(20)", nil), source: col("int", "int(10) unsigned", nil)},
		{name: "signed into unsigned", target: col("bigint", "bigint(20) unsigned", nil), source: col("int", "int(11)", nil), fail: "negative"},
		{name: "bigint unsigned into itself", target: col("bigint", "bigint(20) unsigned", nil), source: col("bigint", "bigint(20) unsigned", nil)},
		{name: "int into decimal(10,0)", target: col("decimal", "decimal(10,0)", prec(10, 0)), source: col("int", "int(11)", nil)},
		{name: "int into decimal(10,2)", target: col("decimal", "decimal(10,2)", prec(10, 2)), source: col("int", "int(11)", nil), fail: "8 integer digits"},
		{name: "decimal wider", target: col("decimal", "decimal(65,30)", prec(65, 30)), source: col("decimal", "decimal(10,2)", prec(10, 2))},
		{name: "decimal scale", target: col("decimal", "decimal(12,1)", prec(12, 1)), source: col("decimal", "decimal(10,2)", prec(10, 2)), fail: "1 decimal places"},
		{name: "double into float", target: col("float", "float", nil), source: col("double", "double", nil), fail: "FLOAT"},
		{name: "varchar wider", target: col("varchar", "varchar(255)", length(255)), source: col("varchar", "varchar(10)", length(10))},
		{name: "varchar(10) from varchar(255)", target: col("varchar", "varchar(10)", length(10)), source: col("varchar", "varchar(255)", length(255)), fail: "10 characters cannot hold the source's 255"},
		{name: "varchar into text", target: col("text", "text", length(65535)), source: col("varchar", "varchar(255)", length(255))},
		{name: "long varchar into text", target: col("text", "text", length(65535)), source: col("varchar", "varchar(20000)", length(20000)), fail: "65535 bytes cannot hold the source's 80000"},
		{name: "text into text", target: col("text", "text", length(65535)), source: col("text", "text", length(65535))},
		{name: "text into varchar", target: col("varchar", "varchar(255)", length(255)), source: col("text", "text", length(65535)), fail: "255 characters"},
		{name: "mediumtext into text", target: col("text", "text", length(65535)), source: col("mediumtext", "mediumtext", length(16777215)), fail: "bytes cannot hold"},
		{name: "utf8mb4 into latin1", target: col("varchar", "varchar(10)", func(c *Column) { c.Length, c.Charset = 10, "latin1" }), source: col("varchar", "varchar(10)", length(10)), fail: "character set latin1"},
		{name: "latin1 into utf8mb4", target: col("varchar", "varchar(10)", length(10)), source: col("varchar", "varchar(10)", func(c *Column) { c.Length, c.Charset = 10, "latin1" })},
		{name: "varchar into char", target: col("char", "char(10)", length(10)), source: col("varchar", "varchar(10)", length(10)), fail: "trailing spaces"},
		{name: "char into varchar", target: col("varchar", "varchar(10)", length(10)), source: col("char", "char(10)", length(10))},
		{name: "varbinary into blob", target: col("blob", "blob", length(65535)), source: col("varbinary", "varbinary(16)", length(16))},
		{name: "varbinary into binary", target: col("binary", "binary(16)", length(16)), source: col("varbinary", "varbinary(16)", length(16)), fail: "pads"},
		{name: "binary same", target: col("binary", "binary(16)", length(16)), source: col("binary", "binary(16)", length(16))},
		{name: "blob into varchar", target: col("varchar", "varchar(255)", length(255)), source: col("blob", "blob", nil), fail: "types differ"},
		{name: "varchar into int", target: col("int", "int(11)", nil), source: col("varchar", "varchar(3)", length(3)), fail: "types differ"},
		{name: "datetime(6) into datetime", target: col("datetime", "datetime", nil), source: col("datetime", "datetime(6)", prec(6, 0)), fail: "0 fractional digits"},
		{name: "datetime into datetime(3)", target: col("datetime", "datetime(3)", prec(3, 0)), source: col("datetime", "datetime", nil)},
		{name: "timestamp into datetime", target: col("datetime", "datetime", nil), source: col("timestamp", "timestamp", nil)},
		{name: "datetime into timestamp", target: col("timestamp", "timestamp", nil), source: col("datetime", "datetime", nil), fail: "types differ"},
		{name: "date into date", target: col("date", "date", nil), source: col("date", "date", nil)},
		{name: "enum superset", target: col("enum", "enum('a','b','c')", func(c *Column) { c.Elements = []string{"a", "b", "c"} }), source: col("enum", "enum('a','b')", func(c *Column) { c.Elements = []string{"a", "b"} })},
		{name: "enum missing member", target: col("enum", "enum('a')", func(c *Column) { c.Elements = []string{"a"} }), source: col("enum", "enum('a','b')", func(c *Column) { c.Elements = []string{"a", "b"} }), fail: `member "b"`},
		{name: "enum into varchar", target: col("varchar", "varchar(5)", length(5)), source: col("enum", "enum('short','longer')", func(c *Column) { c.Elements = []string{"short", "longer"} }), fail: "longest value, 6"},
		{name: "bit narrower", target: col("bit", "bit(8)", prec(8, 0)), source: col("bit", "bit(17)", prec(17, 0)), fail: "8 bits"},
		{name: "json into json", target: col("json", "json", nil), source: col("json", "json", nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := canHold(tc.target, tc.source)
			if (tc.fail == "") != (got == "") || !strings.Contains(got, tc.fail) {
				t.Errorf("canHold(%s ← %s) = %q, want %q", tc.target.ColumnType, tc.source.ColumnType, got, tc.fail)
			}
		})
	}
}

func TestConstantFits(t *testing.T) {
	for _, tc := range []struct {
		target Column
		v      string
		ok     bool
	}{
		{Column{DataType: "int", ColumnType: "int(11)"}, "-5", true},
		{Column{DataType: "int", ColumnType: "int(10) unsigned", Unsigned: true}, "-5", false},
		{Column{DataType: "tinyint", ColumnType: "tinyint(4)"}, "300", false},
		{Column{DataType: "varchar", ColumnType: "varchar(3)", Length: 3}, "n/a", true},
		{Column{DataType: "varchar", ColumnType: "varchar(3)", Length: 3}, "none", false},
		{Column{DataType: "date", ColumnType: "date"}, "2020-01-01", true},
		{Column{DataType: "date", ColumnType: "date"}, "soon", false},
		{Column{DataType: "enum", ColumnType: "enum('x')", Elements: []string{"x"}}, "y", false},
	} {
		if got := constantFits(tc.target, tc.v); (got == "") != tc.ok {
			t.Errorf("constantFits(%s, %q) = %q, want ok=%v", tc.target.ColumnType, tc.v, got, tc.ok)
		}
	}
}
