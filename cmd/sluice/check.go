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
	src, dst *sql.DB
	rc       schema.ResolveConfig
}

// openConfigured loads a configuration file, or without one (path "") the
// built-in IoT table on --topic, and connects to the databases it (or the
// flags) name.
func openConfigured(ctx context.Context, c *command, path string) (*configured, error) {
	return openConfiguredFor(ctx, c, path, true)
}

// openSourceConfigured is openConfigured for a stage that reads only the
// source (backfill, tail): the built-in table, whose key is given, is then
// resolved without the target server, as those stages always ran (their
// deployments hold no target credentials); a file's tables resolve against
// both.
func openSourceConfigured(ctx context.Context, c *command, path string) (*configured, error) {
	return openConfiguredFor(ctx, c, path, path != "")
}

func openConfiguredFor(ctx context.Context, c *command, path string, withTarget bool) (*configured, error) {
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
	src, sdb, err := openDB(ctx, srcFrom, srcDSN, "source_db", 2, backfill.SourceSession, nil)
	if err != nil {
		return nil, err
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
			src.Close()
			return nil, err
		}
	} else if d, err := mysql.ParseDSN(tgtDSN); err == nil && d.DBName != "" {
		tdb = d.DBName // only names the planned target
	}
	return &configured{path: path, cfg: cfg, src: src, dst: dst,
		rc: schema.ResolveConfig{SourceDB: sdb, TargetDB: tdb, TopicPrefix: cfg.topicPrefix}}, nil
}

func (cf *configured) close() {
	cf.src.Close()
	if cf.dst != nil {
		cf.dst.Close()
	}
}

// desc names the configuration in messages: "--config FILE", or the
// built-in table.
func (cf *configured) desc() string {
	if cf.path == "" {
		return "the built-in IoT table (no --config)"
	}
	return "--config " + cf.path
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
	tables, err := schema.ResolveAll(ctx, cf.cfg.tables, cf.src, dst, rc)
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
