package schema_test

import (
	"os"

	"github.com/sluice-dev/sluice/schema"
)

func ExampleTable_WritePlan() {
	upper, err := schema.NewTransform(schema.TransformSpec{Name: schema.TransformUpper})
	if err != nil {
		panic(err)
	}
	id := schema.Column{Name: "id", ColumnType: "bigint(20) unsigned"}
	dev := schema.Column{Name: "device_type", ColumnType: "varchar(64)"}
	msg := schema.Column{Name: "message", ColumnType: "text"}
	t := &schema.Table{
		Source: schema.TableName{DB: "source_db", Table: "raw_records"},
		Target: schema.TableName{DB: "target_db", Table: "records"},
		Topic:  "sluice.raw_records",
		ID:     id,
		Columns: []schema.TableColumn{
			{Source: dev, Target: dev},
			{Source: msg, Target: msg, Transforms: []schema.Transform{upper}},
		},
		Dropped:     []string{"id"},
		Key:         []int{0},
		KeyIndex:    "uk_device",
		ExtraUnique: []schema.Index{{Name: "uk_message", Columns: []string{"message"}}},
	}
	t.WritePlan(os.Stdout)
	// Output:
	// table source_db.raw_records -> target_db.records
	//   topic:  sluice.raw_records
	//   id:     id (bigint(20) unsigned)
	//   window: none (the table is read whole)
	//   key:    device_type (target index uk_device)
	//   warning: the target's unique index uk_message (message) is not the key: a change whose value another key's row still holds there (its own change in another partition, not applied yet) would land on that row; drop the index, or make it the key
	//   columns:
	//     SOURCE       TYPE         TARGET       TYPE         TRANSFORMS  RULES
	//     device_type  varchar(64)  device_type  varchar(64)  -           -
	//     message      text         message      text         upper       -
	//   not traveling: id
}
