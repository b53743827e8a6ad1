package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func readExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../deploy/sluice.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// uncommentExample turns the example's commented table into YAML: its
// lines are "  # - …" and "  #   …".
func uncommentExample(s string) string {
	return regexp.MustCompile(`(?m)^  # (- |  )`).ReplaceAllString(s, "  $1")
}

var iotSpec = schema.TableSpec{
	Source: "source_db.raw_records", Target: "target_db.records", ID: "id", Window: "timestamp",
	Key: []string{"device_type", "event_type", "timestamp"}, Topic: "sluice.raw_records",
	Columns: schema.ColumnsSpec{Include: []string{"id", "date", "timestamp", "device_type", "event_type", "message", "created_at", "updated_at"},
		Rename: map[string]string{"id": "source_id"}},
	Transforms: map[string][]schema.TransformSpec{"message": {{Name: "upper"}}},
	Rules:      map[string]schema.RuleSpec{"device_type": {Required: true}, "event_type": {Required: true}},
}

func TestConfigExample(t *testing.T) {
	cfg, err := parseConfig([]byte(readExample(t)), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.tables) != 1 || !reflect.DeepEqual(cfg.tables[0], iotSpec) {
		t.Errorf("tables = %+v\nwant [%+v]", cfg.tables, iotSpec)
	}
	if cfg.topicPrefix != "sluice" || cfg.sourceDSN != "" {
		t.Errorf("prefix %q, source dsn %q", cfg.topicPrefix, cfg.sourceDSN)
	}
}

func TestConfigExamplePersonalData(t *testing.T) {
	text := uncommentExample(readExample(t))
	if strings.Count(text, "- source:") != 2 {
		t.Fatalf("the commented example did not uncomment:\n%s", text)
	}
	check := func(t *testing.T, env map[string]string, wantKeyName string) {
		cfg, err := parseConfig([]byte(text), envOf(env))
		if err != nil {
			t.Fatal(err)
		}
		want := schema.TableSpec{
			Source: "crm.customers", Target: "analytics.customers", Window: "signed_up",
			Columns: schema.ColumnsSpec{Exclude: []string{"ssn"}, Rename: map[string]string{"full_name": "name"}},
			Transforms: map[string][]schema.TransformSpec{
				"email": {{Name: "trim"}, {Name: "lower"}, {Name: "hash", Key: []byte("k3y"), KeyName: wantKeyName}},
				"phone": {{Name: "mask", Keep: 4}},
			},
			Rules: map[string]schema.RuleSpec{"email": {Required: true}, "signed_up": {Min: "2000-01-01", Max: "2099-12-31 23:59:59"}},
		}
		if len(cfg.tables) != 2 || !reflect.DeepEqual(cfg.tables[1], want) {
			t.Errorf("tables[1] = %+v\nwant %+v", cfg.tables[1], want)
		}
	}
	t.Run("key in a variable", func(t *testing.T) { check(t, map[string]string{"PII_HASH_KEY": "k3y"}, "PII_HASH_KEY") })
	t.Run("key in a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "key")
		if err := os.WriteFile(path, []byte("k3y\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, map[string]string{"PII_HASH_KEY_FILE": path}, "PII_HASH_KEY_FILE")
	})
}

func TestConfigErrors(t *testing.T) {
	const table = "tables:\n  - source: db.t\n"
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string // a part of the error
	}{
		{name: "unknown top-level field", yaml: "tabels: []\n", want: `unknown field "tabels"`},
		{name: "unknown table field", yaml: table + "    windw: ts\n", want: `tables[0] (db.t): unknown field "windw"`},
		{name: "unknown kafka field", yaml: "kafka: {prefix: x}\n" + table, want: `unknown field "prefix"`},
		{name: "hash secret unset", yaml: table + "    transforms: {c: [{hash: {secret: PII_KEY}}]}\n", want: "tables[0] (db.t): transforms.c[0]: hash: secret PII_KEY: set PII_KEY, or PII_KEY_FILE"},
		{name: "hash secret twice", yaml: table + "    transforms: {c: [{hash: {secret: K}}]}\n", env: map[string]string{"K": "a", "K_FILE": "/x"}, want: "K and K_FILE: give the key once"},
		{name: "hash secret empty", yaml: table + "    transforms: {c: [{hash: {secret: K}}]}\n", env: map[string]string{"K": ""}, want: "secret K is empty"},
		{name: "hash secret file missing", yaml: table + "    transforms: {c: [{hash: {secret: K}}]}\n", env: map[string]string{"K_FILE": "/nonexistent/k"}, want: "K_FILE"},
		{name: "duplicate key", yaml: table + "    id: a\n    id: b\n", want: `"id" already set`},
		{name: "no tables", yaml: "kafka: {topic_prefix: x}\n", want: "tables: none configured"},
		{name: "no source", yaml: "tables:\n  - target: db.t\n", want: "tables[0] (): source: required"},
		{name: "unset variable", yaml: "tables:\n  - source: db.t\n    target: ${TARGET_DB}.t\n", want: "tables[0].target: ${TARGET_DB}: the variable TARGET_DB is not set"},
		{name: "unclosed variable", yaml: "source: {dsn: \"u:${PW@tcp(h)/\"}\n" + table, want: "source.dsn: ${ without a closing }"},
		{name: "bad variable name", yaml: "source: {dsn: \"${1X}\"}\n" + table, want: "${1X}: not a variable name"},
		{name: "not yaml", yaml: "tables: [\n", want: "yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.yaml), envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigExpandsVariables(t *testing.T) {
	env := map[string]string{"TDB": "warehouse", "PW": "p@ss:w#rd {}", "COL": "ignored"}
	cfg, err := parseConfig([]byte(`
source: {dsn: "u:${PW}@tcp(h:3306)/src"}
tables:
  - source: db.t
    target: ${TDB}.t
    topic: cost$$center.${TDB}
    columns: {rename: {"${COL}": x}}
    transforms: {c: [null, {constant: 0}, upper]}
    rules: {ts: {min: 2000-01-01}}
`), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.tables[0]
	if cfg.sourceDSN != "u:p@ss:w#rd {}@tcp(h:3306)/src" || s.Target != "warehouse.t" || s.Topic != "cost$center.warehouse" {
		t.Errorf("dsn %q target %q topic %q", cfg.sourceDSN, s.Target, s.Topic)
	}
	if _, ok := s.Columns.Rename["${COL}"]; !ok {
		t.Errorf("a key was expanded: %v", s.Columns.Rename)
	}
	want := []schema.TransformSpec{{Name: "null"}, {Name: "constant", Value: "0"}, {Name: "upper"}}
	if !reflect.DeepEqual(s.Transforms["c"], want) {
		t.Errorf("transforms %+v", s.Transforms["c"])
	}
	if s.Rules["ts"].Min != "2000-01-01" {
		t.Errorf("an unquoted date: %q", s.Rules["ts"].Min)
	}
}

// TestConfigNeverPrintsHashKey: neither a parse error nor the plan's
// description of the transform shows the key.
func TestConfigNeverPrintsHashKey(t *testing.T) {
	env := map[string]string{"K": "top-secret-value"}
	cfg, err := parseConfig([]byte("tables:\n  - source: db.t\n    transforms: {c: [{hash: {secret: K}}]}\n"), envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.tables[0].Transforms["c"][0].String(); strings.Contains(s, "top-secret") || s != "hash(key K)" {
		t.Errorf("String() = %q", s)
	}
	_, err = parseConfig([]byte("tables:\n  - source: db.t\n    transforms: {c: [{hash: {secret: K}}]}\n    windw: x\n"), envOf(env))
	if err == nil || strings.Contains(err.Error(), "top-secret") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadConfigIsUsageError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte("tables:\n  - source: db.t\n    windw: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadConfig(path, envOf(nil))
	var ue usageError
	if !errors.As(err, &ue) || exitCodeOf(err) != exitUsage || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v (exit %d), want a usage error naming %s", err, exitCodeOf(err), path)
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), envOf(nil)); exitCodeOf(err) != exitUsage {
		t.Errorf("a missing file: %v", err)
	}
}

// TestBuiltinMatchesExample keeps the built-in configuration (what every
// command syncs without --config) and the example file's first table the
// same table: they differ only in the databases, which the built-in one
// takes from the DSNs, and in the topic, which is --topic's.
func TestBuiltinMatchesExample(t *testing.T) {
	ex, err := parseConfig([]byte(readExample(t)), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{defaultTopic, "other.events"} {
		b, err := builtinConfig(topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.tables) != 1 {
			t.Fatalf("built-in tables: %d, want 1", len(b.tables))
		}
		want := ex.tables[0]
		want.Source = strings.TrimPrefix(want.Source, "source_db.")
		want.Target = strings.TrimPrefix(want.Target, "target_db.")
		want.Topic = topic
		if !reflect.DeepEqual(b.tables[0], want) {
			t.Errorf("--topic %s: built-in table = %+v\nwant the example's first table %+v", topic, b.tables[0], want)
		}
		if b.stateTopic != topic+".progress" {
			t.Errorf("--topic %s: built-in state topic %s, want %s.progress", topic, b.stateTopic, topic)
		}
		if topic == defaultTopic && (ex.stateTopic != b.stateTopic || ex.tables[0].Topic != b.tables[0].Topic) {
			t.Errorf("example's topics %s (state %s), built-in's %s (state %s)", ex.tables[0].Topic, ex.stateTopic, b.tables[0].Topic, b.stateTopic)
		}
	}
	if b, err := builtinConfig(""); err != nil || b.tables[0].Topic != defaultTopic {
		t.Errorf("built-in without --topic: %v, %+v", err, b)
	}
}
