package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
)

// usageError is a bad flag or flag value: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// options holds every flag value; each subcommand registers the groups it uses.
type options struct {
	sourceDSN, targetDSN string
	brokers, topic       string
	stateTopic           string // from --config's kafka.state_topic; "" : <topic>.progress
	partitions           int
	group                string
	instanceID           string // --instance-id: static membership ("host", an id, or "" for dynamic)
	startAt, endAt, tz   string
	chunkSize            uint64
	readers              int
	batchSize            int
	fetchMaxBytes        int
	bulkLoad             bool
	bulkInsert           bool
	wire                 *consumer.Wire // the configured target's pool dials through it (openConfiguredFor)
	linger               time.Duration
	produceLinger        time.Duration
	compression          string
	maxBuffered          int
	deliveryTimeout      time.Duration
	kafkaTimeout         time.Duration
	metricsAddr          string
	logFormat, logLevel  string
	rows                 int
	verify               bool
	consumers            int
	chunkRows            int

	// TLS of every MySQL connection (mysqltls.go): PEM files
	mysqlCA, mysqlCert, mysqlKey string

	// the Kafka connection's security (kafka.go), and what kafkaConn built
	kafkaTLS, kafkaInsecure                       bool
	kafkaCA, kafkaCert, kafkaKey, kafkaServerName string
	kafkaSASL, kafkaUser                          string
	kafkaOpts                                     []kgo.Opt
	kafkaDesc                                     string

	// retries and resume (backfill, run), consumer DB retries (consume, run)
	chunkAttempts      int
	chunkBackoff       time.Duration
	checkpointInterval time.Duration
	restart            bool
	dbAttempts         int
	dbBackoff          time.Duration
	commitTimeout      time.Duration
	lagInterval        time.Duration

	// notifications (backfill, consume, run)
	job                         string
	notifyWebhook, notifyFormat string
	notifySummary               bool
	notifyTimeout               time.Duration
}

// command is one subcommand's flag set plus the aliases it accepts.
type command struct {
	fs       *flag.FlagSet
	o        *options
	aliases  map[string]string // alias -> canonical flag name
	mysql    bool              // the MySQL TLS flags are registered
	kafkaSet bool              // the Kafka flags are registered
}

func newCommand(name string) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), o: &options{}, aliases: map[string]string{}}
	c.fs.SetOutput(io.Discard) // errors are reported once, by main
	c.fs.Usage = func() {}
	return c
}

// defaultTopic is --topic's default: the built-in table's topic.
const defaultTopic = "sluice.raw_records"

func (c *command) source() {
	c.fs.StringVar(&c.o.sourceDSN, "source-dsn", "sluice:sluice@tcp(127.0.0.1:3307)/source_db",
		"source MySQL/MariaDB DSN (go-sql-driver form); its database holds raw_records")
	c.mysqlTLS()
}

func (c *command) target() {
	c.fs.StringVar(&c.o.targetDSN, "target-dsn", "sluice:sluice@tcp(127.0.0.1:3307)/target_db",
		"target MySQL/MariaDB DSN (go-sql-driver form); its database holds records")
	c.mysqlTLS()
}

// mysqlTLS registers the TLS flags of the MySQL connections, once.
func (c *command) mysqlTLS() {
	if c.mysql {
		return
	}
	c.mysql = true
	c.fs.StringVar(&c.o.mysqlCA, "mysql-ca", "", "PEM file of the CA(s) that sign the MySQL servers' certificates; set, it turns on verified TLS for every DSN that names no tls= of its own, the binlog connection included")
	c.fs.StringVar(&c.o.mysqlCert, "mysql-cert", "", "PEM file of the client certificate, for servers that require one (with --mysql-key)")
	c.fs.StringVar(&c.o.mysqlKey, "mysql-key", "", "PEM file of the client certificate's private key (with --mysql-cert)")
}

func (c *command) kafka() {
	c.fs.StringVar(&c.o.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	c.fs.StringVar(&c.o.topic, "topic", defaultTopic, "Kafka topic of the change events (of the built-in IoT table without --config)")
	c.fs.DurationVar(&c.o.kafkaTimeout, "kafka-timeout", 10*time.Second, "how long to wait for the brokers to answer at start")
	c.kafkaSecurity()
	c.kafkaSet = true
}

func (c *command) produce() {
	c.fs.IntVar(&c.o.partitions, "partitions", 12, "partitions of the topic when Sluice creates it")
	c.fs.DurationVar(&c.o.produceLinger, "produce-linger", 5*time.Millisecond, "how long a producer batch waits to fill")
	c.fs.StringVar(&c.o.compression, "compression", "snappy", "producer compression: none, snappy, lz4, zstd")
	c.fs.IntVar(&c.o.maxBuffered, "max-buffered-records", 20000, "records in flight to Kafka before reading pauses (bounds memory)")
	c.fs.DurationVar(&c.o.deliveryTimeout, "delivery-timeout", 2*time.Minute, "fail a record not acknowledged by Kafka within this time")
}

func (c *command) window() {
	const layout = `"2006-01-02 15:04:05", "2006-01-02" or RFC 3339`
	c.fs.StringVar(&c.o.startAt, "start-at", "", "window start, inclusive ("+layout+"); default: yesterday 00:00 in --tz")
	c.fs.StringVar(&c.o.endAt, "end-at", "", "window end, exclusive; default: today 00:00 in --tz")
	c.fs.StringVar(&c.o.startAt, "start_at", "", "same as --start-at (the earlier job's spelling)")
	c.fs.StringVar(&c.o.endAt, "end_at", "", "same as --end-at (the earlier job's spelling)")
	c.aliases["start_at"], c.aliases["end_at"] = "start-at", "end-at"
	c.fs.StringVar(&c.o.tz, "tz", "UTC", "time zone of the source's DATETIME wall clock, for the default window and RFC 3339 input")
}

func (c *command) read() {
	c.fs.Uint64Var(&c.o.chunkSize, "chunk-size", 10000, "ids per keyset chunk")
	c.fs.IntVar(&c.o.readers, "readers", max(2, runtime.NumCPU()), "chunks read in parallel")
	c.fs.IntVar(&c.o.chunkAttempts, "chunk-attempts", 5, "tries of one chunk (its read and its delivery to Kafka together) before the run fails")
	c.fs.DurationVar(&c.o.chunkBackoff, "chunk-backoff", 200*time.Millisecond, "wait before a chunk's second try, doubled for each further one, with jitter")
	c.fs.DurationVar(&c.o.checkpointInterval, "checkpoint-interval", 500*time.Millisecond, "at most one save of the backfill's progress (to <topic>.progress) per interval")
	c.fs.BoolVar(&c.o.restart, "restart", false, "ignore the window's saved progress and read all of it again")
}

func (c *command) consume() {
	c.fs.StringVar(&c.o.group, "group", "sluice", "Kafka consumer group")
	c.fs.IntVar(&c.o.batchSize, "batch-size", 10000, "records per database transaction")
	c.fs.DurationVar(&c.o.linger, "linger", time.Second, "flush a batch that is not full this long after its first record")
	c.fs.IntVar(&c.o.dbAttempts, "db-attempts", 5, "tries of one batch transaction on transient database errors (deadlock, lock wait timeout, lost connection, read-only)")
	c.fs.DurationVar(&c.o.dbBackoff, "db-backoff", 100*time.Millisecond, "wait before a batch transaction's second try, doubled for each further one")
	c.fs.DurationVar(&c.o.commitTimeout, "commit-timeout", 30*time.Second, "how long the offset commit after a database commit may take")
	c.fs.DurationVar(&c.o.lagInterval, "lag-interval", 10*time.Second, "with --metrics-addr: how often to export the group's lag, sluice_consumer_lag_records, from its committed offsets (0: never)")
	c.fs.IntVar(&c.o.consumers, "consumers", 2, "group members this process runs: more keep the target busy from more connections")
	c.fs.IntVar(&c.o.fetchMaxBytes, "fetch-max-bytes", consumer.DefaultFetchMaxBytes, "bytes one Kafka fetch may return, per member: bounds the records a member holds (and the collector's work)")
	c.fs.BoolVar(&c.o.bulkLoad, "bulk-load", true, "write batches of new rows with LOAD DATA LOCAL INFILE instead of the upsert (needs the server's local_infile on and innodb_autoinc_lock_mode=2)")
	c.fs.BoolVar(&c.o.bulkInsert, "bulk-insert", true, "on MariaDB, send batches of new rows as one binary bulk insert (COM_STMT_BULK_EXECUTE) rather than LOAD DATA text (needs innodb_autoinc_lock_mode=2; not over TLS or compression); --bulk-load=false turns both off")
}

// instance registers --instance-id, whose default differs by command: run
// is static by default (the nightly job: a rerun after a kill takes over the
// killed run's members at once), consume dynamic (several consume processes
// on one host must not share ids).
func (c *command) instance(def string) {
	c.fs.StringVar(&c.o.instanceID, "instance-id", def,
		`static group membership: member i of this process joins as <command>.<id>.<i>, and a restart with the same id takes over a killed process's members at once ("host": this host's name; "": dynamic members, which a restart must wait out)`)
}

// notify registers the job name and the webhook flags.
func (c *command) notify() {
	c.fs.StringVar(&c.o.job, "job", "", "name of this job in notifications and in its stored outcome (default: <command>/<topic>, plus /<group> for run and consume)")
	c.fs.StringVar(&c.o.notifyWebhook, "notify-webhook", "", `URL to POST a JSON message to on failure and on the first success after a failure ("" disables)`)
	c.fs.StringVar(&c.o.notifyFormat, "notify-format", "json", "webhook payload: json (Sluice's fields) or slack (a Slack-compatible {\"text\": …})")
	c.fs.BoolVar(&c.o.notifySummary, "notify-summary", false, "also POST a summary of every successful run")
	c.fs.DurationVar(&c.o.notifyTimeout, "notify-timeout", 10*time.Second, "how long one webhook POST may take")
}

func (c *command) serve() {
	c.fs.StringVar(&c.o.metricsAddr, "metrics-addr", "127.0.0.1:9464", `address of the Prometheus /metrics endpoint ("" disables it)`)
}

func (c *command) logging() {
	c.fs.StringVar(&c.o.logFormat, "log-format", "text", "log format: text or json")
	c.fs.StringVar(&c.o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

// parse parses args, then fills every flag not given on the command line from
// its environment variable SLUICE_<FLAG> (dashes as underscores).
func (c *command) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if c.fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags only)", c.fs.Arg(0))
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if canon, ok := c.aliases[f.Name]; ok {
			set[canon] = true
		}
	})
	var err error
	c.fs.VisitAll(func(f *flag.Flag) {
		if _, alias := c.aliases[f.Name]; alias || set[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := c.fs.Set(f.Name, v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	if err == nil {
		err = c.readSecretFiles(set)
	}
	if err == nil && c.mysql {
		err = c.o.applyMySQLTLS()
	}
	if err == nil && c.kafkaSet {
		if c.o.kafkaOpts, c.o.kafkaDesc, err = c.o.kafkaConn().Opts(); err != nil && !errors.As(err, new(usageError)) {
			err = usageError{err}
		}
	}
	return err
}

func envName(flagName string) string {
	return "SLUICE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// usage prints the command's flags with their environment variables.
func (c *command) usage(w io.Writer, summary string) {
	fmt.Fprintf(w, "usage: sluice %s [flags]\n\n%s\n\nflags (each also read from its environment variable):\n", c.fs.Name(), summary)
	c.fs.VisitAll(func(f *flag.Flag) {
		if _, alias := c.aliases[f.Name]; alias {
			return
		}
		def := ""
		if f.DefValue != "" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
	})
}

// timeLayouts are the accepted forms of --start-at and --end-at.
var timeLayouts = []string{time.DateTime, "2006-01-02T15:04:05", time.DateOnly}

// parseWindow turns the window flags into wall-clock times labelled UTC, the
// way the driver sends DATETIME values. With neither flag given, the window
// is yesterday in --tz.
func parseWindow(o *options, now time.Time) (start, end time.Time, err error) {
	loc, err := time.LoadLocation(o.tz)
	if err != nil {
		return start, end, usagef("--tz %q: %v", o.tz, err)
	}
	if o.startAt == "" && o.endAt == "" {
		today := now.In(loc)
		end = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, time.UTC)
		return end.AddDate(0, 0, -1), end, nil
	}
	if o.startAt == "" || o.endAt == "" {
		return start, end, usagef("--start-at and --end-at go together (got --start-at %q, --end-at %q)", o.startAt, o.endAt)
	}
	if start, err = parseTime("--start-at", o.startAt, loc); err != nil {
		return start, end, err
	}
	if end, err = parseTime("--end-at", o.endAt, loc); err != nil {
		return start, end, err
	}
	if !end.After(start) {
		return start, end, usagef("--end-at %s is not after --start-at %s (the end is exclusive)", end.Format(time.DateTime), start.Format(time.DateTime))
	}
	return start, end, nil
}

// wallClock is the instant t as the source's DATETIME wall clock in loc,
// labelled UTC, the way the driver sends DATETIME values.
func wallClock(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func parseTime(flagName, v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return wallClock(t, loc), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, usagef(`%s %q: not a time; use "2006-01-02 15:04:05", "2006-01-02" or RFC 3339`, flagName, v)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// openDB connects to the server of a DSN without selecting its database (it
// may not exist before migrate) and returns the database name. session sets
// the settings of the stage that owns the pool: backfill.SourceSession for
// the source, consumer.TargetSession for the target.
//
// dial, when not nil, dials the pool's connections (a consumer.Wire's Dial).
func openDB(ctx context.Context, flagName, dsn, defaultDB string, conns int, session func(*mysql.Config), dial func(context.Context, string, string) (net.Conn, error)) (*sql.DB, string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, "", usagef("%s: %v", flagName, err)
	}
	database := cfg.DBName
	if database == "" {
		database = defaultDB
	}
	cfg.DBName = ""
	session(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if dial != nil {
		cfg.DialFunc = dial
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, "", usagef("%s: %v", flagName, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(30 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout+time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, "", fmt.Errorf("%s: MySQL at %s as %s unreachable: %w", flagName, cfg.Addr, cfg.User, err)
	}
	return db, database, nil
}

// newLogger builds the structured logger; every line carries the command and
// the run id.
func newLogger(o *options, cmd, runID string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, usagef("--log-level %q: use debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch o.logFormat {
	case "text":
		h = slog.NewTextHandler(os.Stderr, hopts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, hopts)
	default:
		return nil, usagef("--log-format %q: use text or json", o.logFormat)
	}
	return slog.New(h).With("cmd", cmd, "run_id", runID), nil
}
