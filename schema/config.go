package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// A configuration file declares the tables to sync as a list, tables:,
// one entry per table, each a TableSpec in the file's words (source,
// target, id, window, key, topic, columns, transforms, rules);
// cmd/sluice reads the file (YAML, its ${VAR}s expanded) and hands each
// entry here as JSON. Decoding is strict: an unknown field, a duplicate key or a value of the
// wrong type is an error naming it.

// SecretFunc returns the key a hash transform names by its variable, and
// where the key came from (the variable, or VAR_FILE), for errors that
// must never show the key itself.
type SecretFunc func(name string) (key []byte, from string, err error)

// DecodeTableSpec decodes entry i of a configuration file's tables: into a
// TableSpec, asking secret for the keys of its hash transforms. Its errors
// name the entry: tables[i] (db.table): the field.
func DecodeTableSpec(i int, raw []byte, secret SecretFunc) (TableSpec, error) {
	var ct tableEntry
	if err := strictJSON(raw, &ct); err != nil {
		return TableSpec{}, fmt.Errorf("tables[%d]%s: %w", i, sourceLabel(raw), configJSONError(err))
	}
	spec, err := ct.spec(secret)
	if err != nil {
		return TableSpec{}, fmt.Errorf("tables[%d] (%s): %w", i, ct.Source, err)
	}
	return spec, nil
}

// DecodeConfig decodes a configuration file's JSON document b into v as
// DecodeTableSpec does an entry: refusing unknown fields, with numbers kept
// as written and errors worded for the file's reader.
func DecodeConfig(b []byte, v any) error {
	return configJSONError(strictJSON(b, v))
}

// tableEntry is one entry of tables:, as written.
type tableEntry struct {
	Source     string                      `json:"source"`
	Target     string                      `json:"target"`
	ID         string                      `json:"id"`
	Window     string                      `json:"window"`
	Key        []string                    `json:"key"`
	Topic      string                      `json:"topic"`
	Columns    columnsEntry                `json:"columns"`
	Transforms map[string][]transformEntry `json:"transforms"`
	Rules      map[string]ruleEntry        `json:"rules"`
}

type columnsEntry struct {
	Include []string          `json:"include"`
	Exclude []string          `json:"exclude"`
	Rename  map[string]string `json:"rename"`
}

type ruleEntry struct {
	Required  bool   `json:"required"`
	MaxLength int64  `json:"max_length"`
	Min       string `json:"min"`
	Max       string `json:"max"`
}

// transformEntry is one transform of a column's list: a name (upper,
// lower, trim, null) or a one-key map ({mask: {keep: 4}}, {constant: x},
// {hash: {secret: VAR}}).
type transformEntry struct {
	spec   TransformSpec
	secret string // hash: the variable naming the key (VAR, or VAR_FILE for a file)
}

func (t *transformEntry) UnmarshalJSON(b []byte) error {
	if string(b) == "null" { // YAML's bare null
		t.spec.Name = TransformNull
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err == nil {
		switch name {
		case TransformUpper, TransformLower, TransformTrim, TransformNull:
			t.spec.Name = name
			return nil
		case TransformMask:
			return errors.New("mask needs the characters to keep: {mask: {keep: 4}}")
		case TransformHash:
			return errors.New("hash needs the variable holding its key: {hash: {secret: PII_HASH_KEY}}")
		case TransformConstant:
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
		case TransformMask:
			var a struct {
				Keep *int `json:"keep"`
			}
			if err := strictJSON(arg, &a); err != nil || a.Keep == nil {
				return fmt.Errorf("mask: want {keep: N}, got %s", arg)
			}
			t.spec.Keep = *a.Keep
		case TransformHash:
			var a struct {
				Secret string `json:"secret"`
			}
			if err := strictJSON(arg, &a); err != nil || a.Secret == "" {
				return fmt.Errorf("hash: want {secret: VAR}, the variable (or VAR_FILE, a file) holding the key")
			}
			t.secret = a.Secret
		case TransformConstant:
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

// configJSONError rewords encoding/json's errors for a YAML file's reader:
// the field's path rather than Go's type names. nil stays nil.
func configJSONError(err error) error {
	if err == nil {
		return nil
	}
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
func (ct tableEntry) spec(secret SecretFunc) (TableSpec, error) {
	s := TableSpec{
		Source: ct.Source, Target: ct.Target, ID: ct.ID, Window: ct.Window, Key: ct.Key, Topic: ct.Topic,
		Columns: ColumnsSpec{Include: ct.Columns.Include, Exclude: ct.Columns.Exclude, Rename: ct.Columns.Rename},
	}
	if ct.Source == "" {
		return s, errors.New("source: required (db.table)")
	}
	if len(ct.Rules) > 0 {
		s.Rules = map[string]RuleSpec{}
		for col, r := range ct.Rules {
			s.Rules[col] = RuleSpec{Required: r.Required, MaxLength: r.MaxLength, Min: r.Min, Max: r.Max}
		}
	}
	if len(ct.Transforms) > 0 {
		s.Transforms = map[string][]TransformSpec{}
		cols := make([]string, 0, len(ct.Transforms))
		for col := range ct.Transforms {
			cols = append(cols, col)
		}
		sort.Strings(cols)
		for _, col := range cols {
			for i, t := range ct.Transforms[col] {
				if t.spec.Name == TransformHash {
					var err error
					if t.spec.Key, t.spec.KeyName, err = secret(t.secret); err != nil {
						return s, fmt.Errorf("transforms.%s[%d]: hash: %w", col, i, err)
					}
				}
				s.Transforms[col] = append(s.Transforms[col], t.spec)
			}
		}
	}
	return s, nil
}
