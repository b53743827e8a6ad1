package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
//	tables             one entry per table (schema.DecodeTableSpec)
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
	if err := schema.DecodeConfig(j, &f); err != nil {
		return nil, err
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
	secret := func(name string) ([]byte, string, error) { return readHashKey(name, lookup) }
	for i, rawTable := range f.Tables {
		spec, err := schema.DecodeTableSpec(i, rawTable, secret)
		if err != nil {
			return nil, err
		}
		cfg.tables = append(cfg.tables, spec)
	}
	return cfg, nil
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

// builtinYAML is the built-in configuration (builtin.yaml): the IoT table
// every command syncs without --config.
//
//go:embed builtin.yaml
var builtinYAML []byte

// builtinConfig is the built-in configuration on topic (--topic; a command
// without that flag gets its default): the IoT table, its state in
// <topic>.progress, as the flag-only setup always kept it. Its connections
// are the flags'.
func builtinConfig(topic string) (*config, error) {
	if topic == "" {
		topic = defaultTopic
	}
	cfg, err := parseConfig(builtinYAML, func(name string) (string, bool) {
		if name == "SLUICE_TOPIC" {
			return topic, true
		}
		return "", false
	})
	if err != nil {
		return nil, usagef("the built-in IoT table (no --config), on --topic %s: %v", topic, err)
	}
	return cfg, nil
}
