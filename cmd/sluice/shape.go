package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// shapeKey is the state topic's key of a source table's description
// (schema.SourceShape): shape/<db>.<table>.
func shapeKey(t schema.TableName) string { return "shape/" + t.String() }

// shapePoll is how often a consumer asks the state topic again for a
// description that is not there yet.
const shapePoll = 2 * time.Second

// shapeKV is the state store as describing needs it (producer.State).
type shapeKV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	GetPrefix(ctx context.Context, prefix string) (map[string][]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Topic() string
}

// recordingDescriber reads a source's information_schema and keeps what it
// described, so that the producers store exactly the shapes their tables
// resolved with (storeShapes).
type recordingDescriber struct {
	d    schema.Describer
	seen map[schema.TableName]schema.SourceShape
}

func newRecordingDescriber(q schema.Querier) *recordingDescriber {
	return &recordingDescriber{d: schema.InformationSchema(q), seen: map[schema.TableName]schema.SourceShape{}}
}

func (r *recordingDescriber) Describe(ctx context.Context, t schema.TableName) (schema.SourceShape, error) {
	sh, err := r.d.Describe(ctx, t)
	if err == nil {
		r.seen[t] = sh
	}
	return sh, err
}

// storeShapes writes each table's source description, as it resolved, to
// the state topic, where a consumer given no source DSN reads it
// (storedShapes). A producer calls it before its first record of the
// tables; a description equal to the stored one is not written again.
func storeShapes(ctx context.Context, kv shapeKV, described *recordingDescriber, tables []*schema.Table, log *slog.Logger) error {
	if described == nil {
		return nil // resolved from the state topic itself
	}
	for _, t := range tables {
		sh, ok := described.seen[t.Source]
		if !ok {
			return fmt.Errorf("source %s: not described while resolving", t.Source)
		}
		v, err := json.Marshal(sh)
		if err != nil {
			return fmt.Errorf("source %s: describe: %w", t.Source, err)
		}
		key := shapeKey(t.Source)
		old, _, err := kv.Get(ctx, key)
		if err != nil {
			return err
		}
		if bytes.Equal(old, v) {
			continue
		}
		if err := kv.Put(ctx, key, v); err != nil {
			return err
		}
		log.Info("stored the source table's description for consumers without a source DSN", "table", t.Source.String(), "state_topic", kv.Topic(), "key", key)
	}
	return nil
}

// storedShapes describes the sources from the state topic, for a consumer
// given no source DSN: the description a backfill or a tail of the table
// stored (storeShapes). A table not described yet is waited for, polling
// every shapePoll until ctx ends: a consumer started beside a tail that has
// not described its tables yet waits for it instead of failing.
type storedShapes struct {
	kv   shapeKV
	log  *slog.Logger
	poll time.Duration
}

func (s storedShapes) Describe(ctx context.Context, t schema.TableName) (schema.SourceShape, error) {
	key := shapeKey(t)
	for logged := false; ; logged = true {
		v, ok, err := s.kv.Get(ctx, key)
		if err != nil {
			return schema.SourceShape{}, fmt.Errorf("source %s: description: %w", t, err)
		}
		if ok {
			var sh schema.SourceShape
			if err := json.Unmarshal(v, &sh); err != nil {
				return sh, fmt.Errorf("source %s: description in state topic %s key %s: %w", t, s.kv.Topic(), key, err)
			}
			if logged {
				s.log.Info("the source table is described; resolving it", "table", t.String(), "state_topic", s.kv.Topic(), "key", key)
			}
			return sh, nil
		}
		if !logged {
			s.log.Info("no source DSN given, and the source table is not described yet: waiting for a backfill or tail of it to store its description",
				"table", t.String(), "state_topic", s.kv.Topic(), "key", key)
		}
		select {
		case <-ctx.Done():
			return schema.SourceShape{}, fmt.Errorf("source %s: waiting for its description in state topic %s key %s: %w", t, s.kv.Topic(), key, ctx.Err())
		case <-time.After(s.poll):
		}
	}
}

// sourceDB is the database of the tables named without one (the built-in
// table's raw_records) for a consumer given no source DSN, which has no
// DSN to take it from: the one database the state topic describes such a
// table in (def, the default --source-dsn's, when it is one of several). It
// waits for one as Describe does. Without such tables it returns def.
func (s storedShapes) sourceDB(ctx context.Context, specs []schema.TableSpec, def string) (string, error) {
	var bare []string
	for _, sp := range specs {
		if sp.Source != "" && !strings.Contains(sp.Source, ".") {
			bare = append(bare, sp.Source)
		}
	}
	if len(bare) == 0 {
		return def, nil
	}
	for logged := false; ; logged = true {
		stored, err := s.kv.GetPrefix(ctx, "shape/")
		if err != nil {
			return "", fmt.Errorf("source tables %s: descriptions: %w", strings.Join(bare, ", "), err)
		}
		dbs := map[string]bool{}
		for k := range stored {
			db, table, _ := strings.Cut(strings.TrimPrefix(k, "shape/"), ".")
			if slices.Contains(bare, table) {
				dbs[db] = true
			}
		}
		switch {
		case dbs[def]:
			return def, nil
		case len(dbs) == 1:
			for db := range dbs {
				s.log.Info("no source DSN given: the tables named without a database are read as the state topic describes them", "database", db, "tables", strings.Join(bare, ", "), "state_topic", s.kv.Topic())
				return db, nil
			}
		case len(dbs) > 1:
			return "", usagef("source tables %s: no source DSN gives their database, and state topic %s describes them in several (%s): name it (db.table) or give --source-dsn",
				strings.Join(bare, ", "), s.kv.Topic(), strings.Join(slices.Sorted(maps.Keys(dbs)), ", "))
		}
		if !logged {
			s.log.Info("no source DSN given, and no source table of this name is described yet: waiting for a backfill or tail of it to store its description",
				"tables", strings.Join(bare, ", "), "state_topic", s.kv.Topic(), "key", "shape/<db>."+bare[0])
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("source tables %s: waiting for their description in state topic %s: %w", strings.Join(bare, ", "), s.kv.Topic(), ctx.Err())
		case <-time.After(s.poll):
		}
	}
}

// resolveConsumed resolves a consumer's tables: against the source when
// its DSN was given, else from the descriptions in the state topic.
func (s *stage) resolveConsumed(ctx context.Context, cf *configured) ([]*schema.Table, error) {
	if cf.src == nil {
		st, err := s.stateReader(ctx)
		if err != nil {
			return nil, err
		}
		if s.jn == nil || s.jn.state != st {
			defer st.Close()
		}
		ss := storedShapes{kv: st, log: s.stageLog("consumer"), poll: shapePoll}
		if cf.rc.SourceDB, err = ss.sourceDB(ctx, cf.cfg.tables, cf.rc.SourceDB); err != nil {
			return nil, err
		}
		cf.describe = ss
		s.log.Info("no source DSN given: the tables' sources are described by what the producers stored", "config", cf.desc(), "state_topic", st.Topic())
	}
	return cf.resolve(ctx, false)
}

// stateReader opens the state topic for a command that produces nothing
// (consume has no producer flags, so stateStore's producerConfig would not
// validate): the producer's defaults, with this command's Kafka connection
// and state topic. It creates the topic when missing, as any producer
// would.
func (s *stage) stateReader(ctx context.Context) (*producer.State, error) {
	if s.jn != nil && s.jn.state != nil {
		return s.jn.state, nil
	}
	cfg := producer.DefaultConfig()
	cfg.Brokers = splitList(s.o.brokers)
	cfg.Conn, cfg.Security = s.o.kafkaOpts, s.o.kafkaDesc
	if s.o.topic != "" {
		cfg.Topic = s.o.topic
	}
	cfg.StateTopic = s.o.stateTopic
	cfg.ClientID = "sluice-consumer"
	if s.o.kafkaTimeout > 0 {
		cfg.DialTimeout = s.o.kafkaTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, usagef("state topic: %v", err)
	}
	return producer.OpenState(ctx, cfg, s.stageLog("consumer"))
}

// describeSources stores the tables' source descriptions (storeShapes) in
// the state topic, opened for it when the command has not opened it yet.
func (s *stage) describeSources(ctx context.Context, cf *configured, tables []*schema.Table) error {
	st, err := s.stateStore(ctx)
	if err != nil {
		return err
	}
	if s.jn == nil || s.jn.state != st {
		defer st.Close()
	}
	return storeShapes(ctx, st, cf.described, tables, s.stageLog("producer"))
}
