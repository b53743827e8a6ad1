package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// The configuration file (--config, SLUICE_CONFIG) declares the tables to
// sync, and the connections the flags give today; a flag or its SLUICE_*
// variable overrides the file's value. Its top level maps onto the flags:
//
//	source.dsn         --source-dsn
//	target.dsn         --target-dsn
//	kafka.brokers      --brokers
//	kafka.topic_prefix the prefix of default topic names (<prefix>.<db>.<table>)
//	kafka.state_topic  the state topic of every command (default <topic_prefix>.progress)
//	tables             one entry per table (schema.TableSpec)
//
// Parsing is strict: an unknown field, a duplicate key or a value of the
// wrong type is an error naming it. ${VAR} in a string value is replaced by
// the variable's value ($$ is a $); an unset variable is an error naming
// it, so a missing secret never becomes an empty string.

// configFile is the document's top level.
type configFile struct {
	Source configEndpoint    `json:"source"`
	Target configEndpoint    `json:"target"`
	Kafka  configKafka       `json:"kafka"`
	Tables []json.RawMessage `json:"tables"`
}

type configEndpoint struct {
	DSN string `json:"dsn"`
}

type configKafka struct {
	Brokers     []string `json:"brokers"`
	TopicPrefix string   `json:"topic_prefix"`
	StateTopic  string   `json:"state_topic"`
}

// configTable is one entry of tables:, as written.
type configTable struct {
	Source     string                       `json:"source"`
	Target     string                       `json:"target"`
	ID         string                       `json:"id"`
	Window     string                       `json:"window"`
	Key        []string                     `json:"key"`
	Topic      string                       `json:"topic"`
	Columns    configColumns                `json:"columns"`
	Transforms map[string][]configTransform `json:"transforms"`
	Rules      map[string]configRule        `json:"rules"`
}

type configColumns struct {
	Include []string          `json:"include"`
	Exclude []string          `json:"exclude"`
	Rename  map[string]string `json:"rename"`
}

type configRule struct {
	Required  bool   `json:"required"`
	MaxLength int64  `json:"max_length"`
	Min       string `json:"min"`
	Max       string `json:"max"`
}

// configTransform is one transform of a column's list: a name (upper,
// lower, trim, null) or a one-key map ({mask: {keep: 4}}, {constant: x},
// {hash: {secret: VAR}}).
type configTransform struct {
	spec   schema.TransformSpec
	secret string // hash: the variable naming the key (VAR, or VAR_FILE for a file)
}

func (t *configTransform) UnmarshalJSON(b []byte) error {
	if string(b) == "null" { // YAML's bare null
		t.spec.Name = schema.TransformNull
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		switch name {
		case schema.TransformUpper, schema.TransformLower, schema.TransformTrim, schema.TransformNull:
			t.spec.Name = name
			return nil
		case schema.TransformMask:
			return errors.New("mask needs the characters to keep: {mask: {keep: 4}}")
		case schema.TransformHash:
			return errors.New("hash needs the variable holding its key: {hash: {secret: PII_HASH_KEY}}")
		case schema.TransformConstant:
			return errors.New(`constant needs its value: {constant: "n/a"}`)
		}
		return fmt.Errorf("unknown transform %q (use upper, lower, trim, hash, mask, null or constant)", name)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
		return fmt.Errorf("a transform is a name (upper) or a map of one name to its argument ({mask: {keep: 4}}), not %s", b)
	}
	for name, arg := range m {
		t.spec.Name = name
		switch name {
		case schema.TransformMask:
			var a struct {
				Keep *int `json:"keep"`
			}
			if err := strictJSON(arg, &a); err != nil || a.Keep == nil {
				return fmt.Errorf("mask: want {keep: N}, got %s", arg)
			}
			t.spec.Keep = *a.Keep
		case schema.TransformHash:
			var a struct {
				Secret string `json:"secret"`
			}
			if err := strictJSON(arg, &a); err != nil || a.Secret == "" {
				return fmt.Errorf("hash: want {secret: VAR}, the variable (or VAR_FILE, a file) holding the key")
			}
			t.secret = a.Secret
		case schema.TransformConstant:
			var s string
			var n json.Number
			switch {
			case string(arg) == "null": // json leaves s as it is
				return errors.New("constant: a value is required (use the null transform for NULL)")
			case json.Unmarshal(arg, &s) == nil:
				t.spec.Value = s
			case json.Unmarshal(arg, &n) == nil:
				t.spec.Value = n.String()
			default:
				return fmt.Errorf("constant: want a string or a number, got %s (use the null transform for NULL)", arg)
			}
		default:
			return fmt.Errorf("unknown transform %q (use upper, lower, trim, hash, mask, null or constant)", name)
		}
	}
	return nil
}

// strictJSON decodes b into v, refusing unknown fields.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	d.UseNumber()
	return d.Decode(v)
}

// config is a parsed configuration file.
type config struct {
	path        string
	sourceDSN   string
	targetDSN   string
	brokers     []string
	topicPrefix string
	stateTopic  string // the tail's position, the backfill's progress, the epoch, the job's outcome
	tables      []schema.TableSpec
}

// loadConfig reads and parses the configuration file at path; lookup reads
// the environment (os.LookupEnv). Every error is a usage error naming the
// file and the field.
func loadConfig(path string, lookup func(string) (string, bool)) (*config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--config: %v", err)
	}
	cfg, err := parseConfig(raw, lookup)
	if err != nil {
		return nil, usagef("--config %s: %v", path, err)
	}
	cfg.path = path
	return cfg, nil
}

func parseConfig(raw []byte, lookup func(string) (string, bool)) (*config, error) {
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return nil, err
	}
	var doc any
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	if doc, err = expandVars(doc, "", lookup); err != nil {
		return nil, err
	}
	if j, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	var f configFile
	if err := strictJSON(j, &f); err != nil {
		return nil, jsonError(err)
	}
	cfg := &config{sourceDSN: f.Source.DSN, targetDSN: f.Target.DSN, brokers: f.Kafka.Brokers,
		topicPrefix: f.Kafka.TopicPrefix, stateTopic: f.Kafka.StateTopic}
	if cfg.topicPrefix == "" {
		cfg.topicPrefix = "sluice"
	}
	if cfg.stateTopic == "" {
		cfg.stateTopic = producer.StateTopic(cfg.topicPrefix)
	}
	if len(f.Tables) == 0 {
		return nil, errors.New("tables: none configured")
	}
	for i, rawTable := range f.Tables {
		var ct configTable
		if err := strictJSON(rawTable, &ct); err != nil {
			return nil, fmt.Errorf("tables[%d]%s: %w", i, sourceLabel(rawTable), jsonError(err))
		}
		spec, err := ct.spec(lookup)
		if err != nil {
			return nil, fmt.Errorf("tables[%d] (%s): %w", i, ct.Source, err)
		}
		cfg.tables = append(cfg.tables, spec)
	}
	return cfg, nil
}

// sourceLabel is " (db.table)" for an entry whose source can be read, so
// that an error in a long list says which table it is about.
func sourceLabel(rawTable json.RawMessage) string {
	var s struct {
		Source string `json:"source"`
	}
	if json.Unmarshal(rawTable, &s) == nil && s.Source != "" {
		return " (" + s.Source + ")"
	}
	return ""
}

// jsonError rewords encoding/json's errors for a YAML file's reader: the
// field's path rather than Go's type names.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: a %s where a %s is expected", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "list"
	case "map", "struct":
		return "map"
	case "int", "int64":
		return "number"
	}
	return k
}

// spec turns an entry into a TableSpec, reading the hash keys' secrets.
func (ct configTable) spec(lookup func(string) (string, bool)) (schema.TableSpec, error) {
	s := schema.TableSpec{
		Source: ct.Source, Target: ct.Target, ID: ct.ID, Window: ct.Window, Key: ct.Key, Topic: ct.Topic,
		Columns: schema.ColumnsSpec{Include: ct.Columns.Include, Exclude: ct.Columns.Exclude, Rename: ct.Columns.Rename},
	}
	if ct.Source == "" {
		return s, errors.New("source: required (db.table)")
	}
	if len(ct.Rules) > 0 {
		s.Rules = map[string]schema.RuleSpec{}
		for col, r := range ct.Rules {
			s.Rules[col] = schema.RuleSpec{Required: r.Required, MaxLength: r.MaxLength, Min: r.Min, Max: r.Max}
		}
	}
	if len(ct.Transforms) > 0 {
		s.Transforms = map[string][]schema.TransformSpec{}
		cols := make([]string, 0, len(ct.Transforms))
		for col := range ct.Transforms {
			cols = append(cols, col)
		}
		sort.Strings(cols)
		for _, col := range cols {
			for i, t := range ct.Transforms[col] {
				if t.spec.Name == schema.TransformHash {
					var err error
					if t.spec.Key, t.spec.KeyName, err = readHashKey(t.secret, lookup); err != nil {
						return s, fmt.Errorf("transforms.%s[%d]: hash: %w", col, i, err)
					}
				}
				s.Transforms[col] = append(s.Transforms[col], t.spec)
			}
		}
	}
	return s, nil
}

// readHashKey reads a hash key as the secret flags are read: from the
// variable name, or from the file that name_FILE holds, never both. The
// key itself is never put in an error.
func readHashKey(name string, lookup func(string) (string, bool)) ([]byte, string, error) {
	v, inVar := lookup(name)
	path, inFile := lookup(name + "_FILE")
	switch {
	case inVar && inFile:
		return nil, "", fmt.Errorf("%s and %s_FILE: give the key once", name, name)
	case inFile:
		key, err := readSecret(name+"_FILE", path)
		return []byte(key), name + "_FILE", err
	case !inVar:
		return nil, "", fmt.Errorf("secret %s: set %s, or %s_FILE to a file holding it", name, name, name)
	case v == "":
		return nil, "", fmt.Errorf("secret %s is empty", name)
	}
	return []byte(v), name, nil
}

// expandVars replaces ${VAR} in every string value of a decoded JSON
// document (not in keys: they are column and field names). path names the
// value for errors: tables[0].target.
func expandVars(v any, path string, lookup func(string) (string, bool)) (any, error) {
	switch x := v.(type) {
	case string:
		return expandString(x, path, lookup)
	case []any:
		for i := range x {
			var err error
			if x[i], err = expandVars(x[i], fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			var err error
			if x[k], err = expandVars(e, p, lookup); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

func expandString(s, path string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("%s: ${ without a closing }", path)
			}
			name := s[i+2 : i+2+end]
			if !validVarName(name) {
				return "", fmt.Errorf("%s: ${%s}: not a variable name", path, name)
			}
			v, ok := lookup(name)
			if !ok {
				return "", fmt.Errorf("%s: ${%s}: the variable %s is not set", path, name, name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func validVarName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}
