package schema_test

import (
	"fmt"

	"github.com/sluice-dev/sluice/schema"
)

// A change of a two-column table, encoded as the record value and key the
// producer writes, then decoded and transformed as the consumer does.
func ExampleAppendChange() {
	up, _ := schema.NewTransform(schema.TransformSpec{Name: "upper"})
	tb := &schema.Table{
		Source: schema.TableName{DB: "crm", Table: "customers"},
		Target: schema.TableName{DB: "analytics", Table: "customers"},
		Columns: []schema.TableColumn{
			{Source: schema.Column{Name: "id", DataType: "int", ColumnType: "int(10) unsigned", Unsigned: true},
				Target: schema.Column{Name: "id"}},
			{Source: schema.Column{Name: "signed_up", DataType: "datetime", ColumnType: "datetime"},
				Target: schema.Column{Name: "signed_up"}},
			{Source: schema.Column{Name: "full_name", DataType: "varchar", ColumnType: "varchar(100)", Nullable: true},
				Target: schema.Column{Name: "name"}, Transforms: []schema.Transform{up}},
		},
		Key: []int{0},
	}
	c := schema.Change{
		Op:     schema.OpCreate,
		After:  []schema.Value{{B: []byte("7")}, {B: []byte("2025-10-01 10:00:00")}, {B: []byte("Ann")}},
		Source: schema.Source{Connector: "sluice", Name: "sluice", DB: "crm", Table: "customers", File: "mysql-bin.000001", Pos: 4, Snapshot: "false"},
		TsMs:   1759312800000,
	}
	value, _ := schema.AppendChange(nil, tb, &c)
	key, _ := schema.AppendChangeKey(nil, tb, &c)
	fmt.Printf("%s\n%s\n", value, key)

	var got schema.Change
	buf, err := schema.ParseChange(nil, tb, value, &got)
	if err != nil {
		fmt.Println(err)
		return
	}
	row := make([]schema.Value, len(tb.Columns))
	if _, err := tb.TargetRow(buf, got.After, row); err != nil {
		fmt.Println(err)
		return
	}
	for i, v := range row {
		fmt.Printf("%s=%s ", tb.Columns[i].Target.Name, v.B)
	}
	fmt.Println()
	// Output:
	// {"before":null,"after":{"id":7,"signed_up":1759312800000,"full_name":"Ann"},"source":{"connector":"sluice","name":"sluice","ts_ms":0,"db":"crm","table":"customers","server_id":0,"file":"mysql-bin.000001","pos":4,"row":0,"snapshot":"false"},"op":"c","ts_ms":1759312800000}
	// {"id":7}
	// id=7 signed_up=2025-10-01 10:00:00 name=ANN
}
