package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

// runCheck is `sluice check [--config FILE]`: it resolves every configured
// table (without --config, the built-in IoT table) against
// information_schema of the source and the target and prints the plan. It
// reads no row and writes nothing. A bad configuration exits 2 (usage),
// naming the table and the field; a database that cannot be reached exits 1.
func runCheck(ctx context.Context, args []string) error {
	c := newCommand("check")
	var path string
	c.fs.StringVar(&path, "config", "", "the configuration file (YAML) declaring the tables to sync (default: the built-in IoT table)")
	c.fs.StringVar(&c.o.topic, "topic", defaultTopic, "without --config: the built-in IoT table's topic")
	c.source()
	c.target()
	if err := parseOrHelp(c, args); err != nil {
		return err
	}
	cf, err := openConfigured(ctx, c, path)
	if err != nil {
		return err
	}
	defer cf.close()
	tables, err := cf.resolve(ctx, false)
	if err != nil {
		return err
	}
	printPlan(os.Stdout, tables)
	return nil
}

// configured is a configuration file (or the built-in one) with its two
// databases open.
type configured struct {
	path     string // "" : the built-in IoT table (builtin.yaml)
	cfg      *config
	src, dst *sql.DB // src nil: a consumer given no source DSN (openConsumeConfigured)
	rc       schema.ResolveConfig
	// describe describes the tables' sources to resolve: src's
	// information_schema through described, which keeps what it read for
	// the producers to store (storeShapes), or, without src, the stored
	// descriptions (storedShapes, set by the consumer).
	describe  schema.Describer
	described *recordingDescriber
}

// openConfigured loads a configuration file, or without one (path "") the
// built-in IoT table on --topic, and connects to the databases it (or the
// flags) name.
func openConfigured(ctx context.Context, c *command, path string) (*configured, error) {
	return openConfiguredFor(ctx, c, path, true, false)
}

// openSourceConfigured is openConfigured for a stage that reads only the
// source (backfill, tail): the built-in table, whose key is given, is then
// resolved without the target server, as those stages always ran (their
// deployments hold no target credentials); a file's tables resolve against
// both.
func openSourceConfigured(ctx context.Context, c *command, path string) (*configured, error) {
	return openConfiguredFor(ctx, c, path, path != "", false)
}

// openConsumeConfigured is openConfigured for a consumer, whose deployments
// hold only the target's credentials: when no source DSN is given
// (--source-dsn, SLUICE_SOURCE_DSN or the file's source.dsn), the source is
// not connected (cf.src is nil) and the tables' sources are to be described
// from what the producers stored in the state topic (storedShapes); the
// source database of a table named without one is then the default
// --source-dsn's. With path "", the built-in table.
func openConsumeConfigured(ctx context.Context, c *command, path string) (*configured, error) {
	return openConfiguredFor(ctx, c, path, true, true)
}

// openConfiguredFor loads the configuration and connects to the source,
// and to the target when withTarget; with sourceOptional, to the source
// only when its DSN is given (openConsumeConfigured).
func openConfiguredFor(ctx context.Context, c *command, path string, withTarget, sourceOptional bool) (*configured, error) {
	var cfg *config
	var err error
	if path == "" {
		cfg, err = builtinConfig(c.o.topic)
	} else {
		cfg, err = loadConfig(path, os.LookupEnv)
	}
	if err != nil {
		return nil, err
	}
	// The file's Kafka settings, unless a flag or its variable gives them:
	// every Kafka client of the command is made after this.
	if c.fs.Lookup("brokers") != nil {
		c.o.brokers, _ = dsnOf(c.fs, "brokers", strings.Join(cfg.brokers, ","), "kafka.brokers in "+path)
	}
	c.o.stateTopic = cfg.stateTopic
	srcDSN, srcFrom := dsnOf(c.fs, "source-dsn", cfg.sourceDSN, "source.dsn in "+path)
	tgtDSN, tgtFrom := dsnOf(c.fs, "target-dsn", cfg.targetDSN, "target.dsn in "+path)
	var src *sql.DB
	var described *recordingDescriber
	sdb := "source_db"
	if sourceOptional && (srcDSN == "" || !isSet(c.fs, "source-dsn") && cfg.sourceDSN == "") {
		if d, err := mysql.ParseDSN(c.fs.Lookup("source-dsn").DefValue); err == nil && d.DBName != "" {
			sdb = d.DBName // only names the sources: their shapes are read from the state topic
		}
	} else {
		if src, sdb, err = openDB(ctx, srcFrom, srcDSN, "source_db", 2, backfill.SourceSession, nil); err != nil {
			return nil, err
		}
		described = newRecordingDescriber(src)
	}
	var dst *sql.DB
	tdb := "target_db"
	if withTarget {
		// consume and run --config: the target's pool dials through a
		// consumer.Wire, so that the members can send new rows as MariaDB
		// bulk inserts, as openTarget's does.
		var dial func(context.Context, string, string) (net.Conn, error)
		if c.o.bulkLoad && c.o.bulkInsert {
			c.o.wire = consumer.NewWire()
			dial = c.o.wire.Dial
		}
		dst, tdb, err = openDB(ctx, tgtFrom, tgtDSN, "target_db", 2, consumer.TargetSession, dial)
		if err != nil {
			if src != nil {
				src.Close()
			}
			return nil, err
		}
	} else if d, err := mysql.ParseDSN(tgtDSN); err == nil && d.DBName != "" {
		tdb = d.DBName // only names the planned target
	}
	cf := &configured{path: path, cfg: cfg, src: src, dst: dst, described: described,
		rc: schema.ResolveConfig{SourceDB: sdb, TargetDB: tdb, TopicPrefix: cfg.topicPrefix}}
	if described != nil {
		cf.describe = described
	}
	return cf, nil
}

func (cf *configured) close() {
	if cf.src != nil {
		cf.src.Close()
	}
	if cf.dst != nil {
		cf.dst.Close()
	}
}

// desc names the configuration in messages: "--config FILE", or the
// built-in table.
func (cf *configured) desc() string { return describeConfig(cf.path) }

func describeConfig(path string) string {
	if path == "" {
		return "the built-in IoT table (no --config)"
	}
	return "--config " + path
}

// resolve resolves every table; a bad configuration is a usage error (exit
// 2) naming the file, the table and the field.
func (cf *configured) resolve(ctx context.Context, createMissing bool) ([]*schema.Table, error) {
	rc := cf.rc
	rc.CreateMissing = createMissing
	var dst schema.Querier // nil: the targets are planned from the sources
	if cf.dst != nil {
		dst = cf.dst
	}
	if cf.describe == nil {
		return nil, fmt.Errorf("%s: no source to describe the tables (no source DSN, and no state topic read)", cf.desc())
	}
	tables, err := schema.ResolveAllFrom(ctx, cf.cfg.tables, cf.describe, dst, rc)
	var ce *schema.ConfigError
	if errors.As(err, &ce) {
		return nil, usageError{fmt.Errorf("%s: %w", cf.desc(), err)}
	}
	return tables, err
}

// migrateConfigured is `sluice migrate --config FILE`: each configured
// target table that is missing is created from its source's columns (after
// renames, excludes and transforms), the lineage columns are added where
// missing and the tombstone tables created; then every table is resolved
// again as the pipeline will, so a target that cannot work is reported here.
func migrateConfigured(ctx context.Context, c *command, path string) error {
	cf, err := openConfigured(ctx, c, path)
	if err != nil {
		return err
	}
	defer cf.close()
	tables, err := cf.resolve(ctx, true)
	if err != nil {
		return err
	}
	for _, t := range tables {
		did, err := schema.MigrateTable(ctx, cf.dst, t)
		if err != nil {
			return err
		}
		if len(did) == 0 {
			did = []string{"nothing to do"}
		}
		fmt.Printf("migrate: %s -> %s: %s\n", t.Source, t.Target, strings.Join(did, ", "))
	}
	if _, err := cf.resolve(ctx, false); err != nil {
		return err
	}
	check := "sluice check --config " + path
	if path == "" {
		check = "sluice check"
	}
	fmt.Printf("migrate: %d table(s) ready; `%s` prints their plan\n", len(tables), check)
	return nil
}

// dsnOf picks a DSN: the flag when the command line or its SLUICE_*
// variable set it, else the configuration file's, else the flag's default.
// It returns where the DSN came from, for errors.
func dsnOf(fs *flag.FlagSet, name, fromFile, fileField string) (dsn, from string) {
	if isSet(fs, name) || fromFile == "" {
		return fs.Lookup(name).Value.String(), "--" + name
	}
	return fromFile, fileField
}

// printPlan prints each table's resolved plan.
func printPlan(w io.Writer, tables []*schema.Table) {
	for i, t := range tables {
		if i > 0 {
			fmt.Fprintln(w)
		}
		t.WritePlan(w)
	}
	fmt.Fprintf(w, "\ncheck: %d table(s) resolved; no row was read or written\n", len(tables))
}
