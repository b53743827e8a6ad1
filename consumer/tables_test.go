package consumer

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// TestConfigValidateTables: a member needs at least one table, a topic
// per table, no topic shared by two tables, and a dead-letter topic that is
// none of them.
func TestConfigValidateTables(t *testing.T) {
	table := func(name, topic string) *schema.Table {
		return &schema.Table{Target: schema.TableName{DB: "dst", Table: name}, Topic: topic}
	}
	tests := []struct {
		name    string
		tables  []*schema.Table
		dlq     string
		wantErr string // "" for none
	}{
		{name: "two tables", tables: []*schema.Table{table("a", "t.a"), table("b", "t.b")}},
		{name: "no tables", wantErr: "tables: at least one"},
		{name: "no topic", tables: []*schema.Table{table("a", "")}, wantErr: "table dst.a: no topic"},
		{name: "shared topic", tables: []*schema.Table{table("a", "t.a"), table("b", "t.a")}, wantErr: "tables dst.a and dst.b: both read topic t.a"},
		{name: "topic is the dead-letter topic", tables: []*schema.Table{table("a", "g.dlq")}, wantErr: "table dst.a: its topic g.dlq is the dead-letter topic"},
		{name: "topic is the set dead-letter topic", tables: []*schema.Table{table("a", "t.a")}, dlq: "t.a", wantErr: "its topic t.a is the dead-letter topic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Group, cfg.DLQTopic, cfg.Tables = "g", tc.dlq, tc.tables
			err := cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate: %v, want %q", err, tc.wantErr)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.Group, cfg.Tables = "g", []*schema.Table{table("a", "t.a")}
	if got := cfg.DeadLetterTopic(); got != "g.dlq" {
		t.Errorf("dead-letter topic %s, want g.dlq", got)
	}
}
