// Package tail follows the source's binlog (change data capture) and produces
// every insert, update and delete of the source table to the same topic as
// the backfill, in the same envelope: op c, u or d with before and after
// images, and a source block with the binlog file, offset, GTID and the
// source commit time. An update that changes the dedupe key becomes a delete
// of the old key and a create of the new one, each keyed by its own key. A
// TRUNCATE of the table becomes a truncate event (op t, no images, no key),
// or with OnTruncate "fail" stops the tail; a change of the table logged as
// a statement (binlog_format STATEMENT or MIXED) has no row images and
// stops it, naming the statement's binlog position (statement.go).
//
// Exactly once into Kafka: events are produced in Kafka transactions, and
// each transaction also writes the binlog position it reaches (the end of
// the last source transaction in it) to the state topic <topic>.progress.
// Transactions end only at source transaction boundaries. A restarted tail
// takes the same transactional id, which fences the old process and aborts
// its open transaction, then reads the last committed position and streams
// from there: an event is in Kafka (to read_committed consumers) if and only
// if the position after it is. The consumer reads read_committed.
//
// Metrics:
//
//	sluice_tail_seconds_behind_source        now minus the source commit time of the last event
//	sluice_tail_events_total{table,op}       events committed to Kafka, by source table (db.table) and op
//	sluice_tail_binlog_position{file}        the committed binlog offset
//	sluice_tail_source_transactions_total    source transactions read
//	sluice_tail_kafka_transactions_total     Kafka transactions committed
//	sluice_tail_commit_seconds               flush-and-commit time
//	sluice_tail_reconnects_total             stream restarts
package tail

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// Config says what to follow and where to produce.
type Config struct {
	Addr     string // source host:port, for the replication connection
	User     string
	Password string
	// TLS, when not nil, encrypts the replication connection as the
	// source DSN's tls= setting encrypts the SQL ones (the parsed DSN's
	// TLS, with its server name).
	TLS      *tls.Config
	Database string // the source database
	Table    string // the source table (raw_records)
	Flavor   string // auto, mysql or mariadb
	ServerID uint32 // replica id on the source; 0 derives one from Name

	// Name identifies this tail: its Kafka transactional id is sluice-tail-<Name>
	// and its position key in the state topic tail/<Name>. Default: db.table.
	Name  string
	From  Start // where to start when no position is stored
	Reset bool  // ignore the stored position and start at From
	// RecoverPurged: when the stored position's binlog is purged, start
	// at the binlog's end instead of stopping, and record the gap to
	// backfill (recover.go). Without it the tail stops and says what to do.
	RecoverPurged bool
	// RecoverMargin widens the start of a recovered gap's window: a
	// transaction committed in the gap may have stamped its rows when it
	// began, before the last commit the tail carried.
	RecoverMargin time.Duration

	Producer      producer.Config
	FlushInterval time.Duration // longest a Kafka transaction stays open
	FlushEvents   int           // events that end a Kafka transaction early
	SaveInterval  time.Duration // how often the position is saved when only other tables change
	MaxRetries    int           // consecutive stream restarts before Run fails

	// Tables are configured tables (sluice tail --config) followed on the
	// same stream, each into its own topic as generic change events
	// (generic.go); with them, Database and Table may be empty.
	Tables []*schema.Table

	// OnTruncate says what a TRUNCATE of the table does: "apply" carries
	// it as a truncate event (op t) that the consumer applies to the
	// target; "fail" stops the tail with an error naming the statement.
	OnTruncate string
}

// DefaultConfig returns the defaults: transactions of at most 100 ms or
// 5,000 events, the position saved at least every 5 s.
func DefaultConfig() Config {
	return Config{
		Flavor:        "auto",
		Table:         "raw_records",
		Producer:      producer.DefaultConfig(),
		FlushInterval: 100 * time.Millisecond,
		FlushEvents:   5000,
		SaveInterval:  5 * time.Second,
		MaxRetries:    10,
		OnTruncate:    "apply",
		RecoverMargin: 5 * time.Minute,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("source address: required")
	case (c.Database == "" || c.Table == "") && len(c.Tables) == 0:
		return errors.New("source database and table: required")
	case c.FlushInterval <= 0:
		return fmt.Errorf("flush interval %s: must be positive", c.FlushInterval)
	case c.FlushEvents < 1:
		return fmt.Errorf("flush events %d: must be at least 1", c.FlushEvents)
	case c.SaveInterval <= 0:
		return fmt.Errorf("save interval %s: must be positive", c.SaveInterval)
	case c.RecoverMargin < 0:
		return fmt.Errorf("--recover-margin %s: must not be negative", c.RecoverMargin)
	case c.OnTruncate != "apply" && c.OnTruncate != "fail":
		return fmt.Errorf("--on-truncate %q: want apply or fail", c.OnTruncate)
	}
	if c.Name == "" && len(c.Tables) > 0 {
		names := make([]string, len(c.Tables))
		for i, t := range c.Tables {
			names[i] = t.Source.String()
		}
		slices.Sort(names)
		c.Name = strings.Join(names, "+")
	}
	if c.Name == "" {
		c.Name = c.Database + "." + c.Table
	}
	if c.ServerID == 0 {
		h := fnv.New32a()
		h.Write([]byte("sluice-tail/" + c.Name))
		c.ServerID = 1<<30 | h.Sum32()>>2 // far from the small ids servers are usually given
	}
	return c.Producer.Validate()
}

// PositionKey is the state-topic key of a tail's committed position.
func PositionKey(name string) string { return "tail/" + name }

// Tail follows the binlog of one table into Kafka.
type Tail struct {
	cfg     Config
	db      *sql.DB // the source, for settings, positions and columns
	metrics *Metrics
	log     *slog.Logger
	tables  []string                // the events metric's table labels: the configured tables' sources, or the fixed table
	events  [][4]prometheus.Counter // by table, then op (opLabels)

	cl        *kgo.Client // transactional
	st        *producer.State
	srv       server
	committed Position // what the state topic holds
	era       producer.Era
	follows   map[string]*followed // the configured tables, by lower-case db.table (generic.go)
	byGTID    bool                 // resume by GTID: the source is another server than the position's
	gap       *Gap                 // the gap recovered from at start (--recover-purged)

	// The table's shape (ddl.go): layout is the shape that row events
	// without column names are read by; named is the layout of the last
	// table map that named its columns; lost is set from a DDL on the
	// table until a table map names the columns again.
	layout layout
	named  namedLayout
	lost   *shapeLost

	mu      sync.Mutex
	stats   Stats
	prodMu  sync.Mutex
	prodErr error
}

// Stats counts what the tail did.
type Stats struct {
	Events      int64 // committed to Kafka
	KafkaTxs    int64
	SourceTxs   int64
	Reconnects  int64
	Position    Position // committed
	BehindSecs  float64
	CaughtUp    bool // the last read found nothing new
	StartedFrom Position
}

// Line is the tail's progress in one line, el after it started, for the
// status line of a terminal.
func (st Stats) Line(el time.Duration) string {
	lag := fmt.Sprintf("%.0f s behind", st.BehindSecs)
	if st.CaughtUp {
		lag = "caught up"
	}
	return fmt.Sprintf("tail at %s: %d events (%.0f/s), %d source transactions, %s", st.Position.String(), st.Events,
		float64(st.Events)/el.Seconds(), st.SourceTxs, lag)
}

// New checks the configuration; Run connects.
func New(cfg Config, db *sql.DB, m *Metrics, log *slog.Logger) (*Tail, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.Default()
	}
	t := &Tail{cfg: cfg, db: db, metrics: m, log: log, follows: followedTables(cfg.Tables)}
	// The tables the events metric counts by: the configured tables, in
	// their order (followed.idx), or the fixed table.
	t.tables = []string{cfg.Database + "." + cfg.Table}
	if len(cfg.Tables) > 0 {
		t.tables = t.tables[:0]
		for _, tb := range cfg.Tables {
			t.tables = append(t.tables, tb.Source.String())
		}
	}
	t.events = make([][4]prometheus.Counter, len(t.tables))
	for ti, name := range t.tables {
		for i, op := range opLabels {
			t.events[ti][i] = m.events.WithLabelValues(name, op)
		}
	}
	return t, nil
}

// Stats returns a snapshot of the counters.
func (t *Tail) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Ready connects to Kafka and checks the source, then returns where the
// stream will start. Run calls it when it was not called.
func (t *Tail) Ready(ctx context.Context) (Position, error) {
	if t.cl != nil {
		return t.committed, nil
	}
	srv, err := checkServer(ctx, t.db, t.cfg.Flavor)
	if err != nil {
		return Position{}, err
	}
	t.srv = srv
	if srv.serverID == t.cfg.ServerID {
		return Position{}, fmt.Errorf("--server-id %d is the source's own server_id: choose another", t.cfg.ServerID)
	}
	if srv.rowMetadata != "FULL" {
		t.log.Warn("tail: the source's binlog row events carry no column names (binlog_row_metadata is not FULL): the tail reads them by the table's shape, checked by column count and type, and stops at the first event without names after a DDL on the table; SET GLOBAL binlog_row_metadata = 'FULL' (and in the server's configuration) lets it follow DDL",
			"binlog_row_metadata", srv.rowMetadata)
	}
	for _, f := range t.follows {
		cols, err := columnsOf(ctx, t.db, f.t.Source.DB, f.t.Source.Table)
		if err != nil {
			return Position{}, err
		}
		f.setShape(cols)
	}
	if t.cfg.Table != "" {
		cols, err := columnsOf(ctx, t.db, t.cfg.Database, t.cfg.Table)
		if err != nil {
			return Position{}, err
		}
		if t.layout, err = newLayout(cols, t.table()); err != nil {
			return Position{}, err
		}
	}
	pc := t.cfg.Producer
	pc.ClientID = "sluice-tail"
	t.cl, err = kgo.NewClient(append(pc.ClientOpts(),
		kgo.TransactionalID("sluice-tail-"+t.cfg.Name),
		kgo.TransactionTimeout(time.Minute),
	)...)
	if err != nil {
		return Position{}, fmt.Errorf("kafka client for %v: %w", pc.Brokers, err)
	}
	if t.cfg.Table != "" {
		if err := producer.EnsureTopic(ctx, t.cl, pc, t.log); err != nil {
			return Position{}, err
		}
	}
	for _, tb := range t.cfg.Tables {
		tc := pc
		tc.Topic = tb.Topic
		if err := producer.EnsureTopic(ctx, t.cl, tc, t.log); err != nil {
			return Position{}, err
		}
	}
	if t.st, err = producer.OpenState(ctx, pc, t.log); err != nil {
		return Position{}, err
	}
	// A first transaction takes the transactional id: the broker fences a
	// previous process with the same id and aborts its open transaction, so
	// the position read next is the last one committed, for good.
	started := fmt.Appendf(nil, `{"started_at":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	if err := t.store(ctx, PositionKey(t.cfg.Name)+"/started", started); err != nil {
		return Position{}, fmt.Errorf("kafka: take transactional id sluice-tail-%s: %w", t.cfg.Name, err)
	}

	stored, found, err := t.st.Get(ctx, PositionKey(t.cfg.Name))
	if err != nil {
		return Position{}, err
	}
	var from Position
	switch {
	case found && !t.cfg.Reset:
		if from, err = decodePosition(stored); err != nil {
			return Position{}, fmt.Errorf("%w (restart with --reset --from … to start over)", err)
		}
		if t.cfg.RecoverPurged {
			kept, oldest, err := binlogKept(ctx, t.db, from.File)
			if err != nil {
				return Position{}, err
			}
			if !kept {
				if from, err = t.recoverPurged(ctx, from, oldest); err != nil {
					return Position{}, err
				}
				t.log.Info("tail: starting", "from", "now (--recover-purged)", "position", from.String(), "gtid", from.GTID)
				break
			}
		}
		if from, err = t.follow(ctx, from, ""); err != nil {
			return Position{}, err
		}
		t.log.Info("tail: resuming from the position committed with the last events", "position", from.String(), "gtid", from.GTID, "by_gtid", t.byGTID, "epoch", from.Epoch)
		if err := t.resumeShape(from.Columns); err != nil {
			return Position{}, err
		}
		if err := t.resumeShapes(from.Shapes); err != nil {
			return Position{}, err
		}
	default:
		if found {
			t.log.Warn("tail: --reset: ignoring the stored position", "stored", string(stored))
		}
		if from, err = t.startPosition(ctx); err != nil {
			return Position{}, err
		}
		reset := ""
		if found {
			reset = "the tail was reset (--reset)"
		}
		if from, err = t.follow(ctx, from, reset); err != nil {
			return Position{}, err
		}
		// Commit the start at once, before any event: a tail killed before
		// its first commit then resumes from here, not from a later "now"
		// that would skip the changes in between (or, after --reset, from
		// the position it was told to leave). A GTID start has no file yet;
		// its first commit stores it.
		from = t.withShapes(from)
		if from.File != "" {
			if err := t.store(ctx, PositionKey(t.cfg.Name), from.encode()); err != nil {
				return Position{}, fmt.Errorf("kafka: store the start position %s: %w", from, err)
			}
		}
		t.log.Info("tail: starting", "from", t.cfg.From.Kind, "position", from.String(), "gtid", from.GTID, "epoch", from.Epoch)
	}
	if t.gap == nil {
		if t.gap, err = t.pendingGap(ctx); err != nil {
			return Position{}, err
		}
		if t.gap != nil {
			t.log.Warn("tail: the backfill of a gap recovered from earlier is not recorded as done", "lost", t.gap.Lost.String(),
				"resumed", t.gap.Resumed.String(), "backfill", t.gap.BackfillCommand())
		}
	}
	t.committed = from
	t.mu.Lock()
	t.stats.StartedFrom, t.stats.Position = from, from
	t.mu.Unlock()
	return from, nil
}

// table names the followed table for messages.
func (t *Tail) table() string { return t.cfg.Database + "." + t.cfg.Table }

// resumeShape takes the table's shape at the stored position, where the
// position carries one: a DDL while the tail was stopped leaves the table
// in another shape now than the events it will read first. A position
// stored by an older Sluice carries none: the table's columns now are used,
// checked against each event.
func (t *Tail) resumeShape(stored string) error {
	if stored == "" || stored == t.layout.shape {
		return nil
	}
	if lost, ok := parseShapeLost(stored); ok {
		t.lost = lost
		t.log.Warn("tail: the stored position lies after a DDL on the table whose new shape no event has named yet", "ddl", lost.ddl, "at", lost.after.String())
		return nil
	}
	l, err := newLayout(parseShape(stored), t.table())
	if err != nil {
		return permanent(fmt.Errorf("tail: the table's shape stored with the position (%s): %w", stored, err))
	}
	t.log.Warn("tail: the table has changed shape since the stored position (a DDL while the tail was stopped); events are read by the stored shape until the stream reaches the DDL",
		"stored", stored, "now", t.layout.shape)
	t.layout = l
	return nil
}

// startPosition resolves --from to a binlog position. A GTID start keeps
// File empty: the server names the file in its first rotate event.
func (t *Tail) startPosition(ctx context.Context) (Position, error) {
	switch t.cfg.From.Kind {
	case "earliest":
		return earliestPosition(ctx, t.db)
	case "file":
		return t.cfg.From.Pos, nil
	case "gtid":
		if _, err := mysql.ParseGTIDSet(t.srv.flavor, t.cfg.From.GTID); err != nil {
			return Position{}, fmt.Errorf("--from %q: not a %s GTID set: %w", t.cfg.From.GTID, t.srv.flavor, err)
		}
		return Position{GTID: t.cfg.From.GTID}, nil
	}
	return currentPosition(ctx, t.db, t.srv)
}

// Close releases the Kafka clients.
func (t *Tail) Close() {
	if t.cl != nil {
		t.cl.Close()
	}
	if t.st != nil {
		t.st.Close()
	}
}

// Run streams until ctx is done (then it commits what it has at a
// transaction boundary and returns nil) or a permanent error: a purged
// binlog, missing grants, another tail taking over, a row it cannot read.
// Lost connections and failed Kafka transactions restart the stream from
// the last committed position, with backoff, up to MaxRetries times in a row.
func (t *Tail) Run(ctx context.Context) error {
	if _, err := t.Ready(ctx); err != nil {
		return err
	}
	failures := 0
	for restart := false; ; restart = true {
		before := t.committed
		var err error
		if restart { // the source may be another server now, or its binlog reset
			err = t.restartOn(ctx)
		}
		if err == nil {
			err = t.stream(ctx, t.committed)
		}
		progressed := !t.committed.samePlace(before)
		if ctx.Err() != nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if progressed {
			failures = 0
		}
		failures++
		if failures > t.cfg.MaxRetries {
			return fmt.Errorf("tail: %d restarts in a row without progress, last: %w", failures-1, err)
		}
		t.metrics.reconnects.Inc()
		t.mu.Lock()
		t.stats.Reconnects++
		t.mu.Unlock()
		wait := min(time.Duration(1<<min(failures, 5))*200*time.Millisecond, 10*time.Second)
		wait = wait/2 + rand.N(wait/2+1)
		t.log.Warn("tail: stream stopped; restarting from the last committed position", "position", t.committed.String(),
			"attempt", failures, "of", t.cfg.MaxRetries, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// restartOn looks at the source before the stream restarts: a failover or
// a binlog reset shows there (era.go). The stream does not restart until
// the source could be read and the epoch resolved: streaming a new server
// in the old epoch is what loses changes.
func (t *Tail) restartOn(ctx context.Context) error {
	from, err := t.follow(ctx, t.committed, "")
	if err != nil {
		return fmt.Errorf("tail: look at the source before restarting the stream: %w", err)
	}
	if from == t.committed {
		return nil
	}
	if !from.samePlace(t.committed) {
		from = t.withShapes(from)
		if err := t.store(ctx, PositionKey(t.cfg.Name), from.encode()); err != nil {
			return fmt.Errorf("kafka: store the new start %s: %w", from, err)
		}
	}
	t.committed = from
	return nil
}

// permanentError stops Run: retrying cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// streamState is what one stream tracks between events.
type streamState struct {
	file     string
	gset     mysql.GTIDSet // executed set, where known
	curGTID  string        // the GTID of the source transaction being read
	inTx     bool          // inside a source transaction
	began    bool          // the transaction opened with BEGIN (statements in it do not end it)
	boundary Position      // the end of the last source transaction read

	open    bool // a Kafka transaction is open
	openAt  time.Time
	events  int
	ops     [][4]int64 // by table (Tail.tables): c, u, d, t in the open transaction (opLabels)
	savedAt time.Time

	checkedAt time.Time // when the source was last compared with the stream (watchSource)
	lastEvent time.Time // when the last event other than a heartbeat arrived
}

// stream reads the binlog from the committed position until an error.
func (t *Tail) stream(ctx context.Context, from Position) error {
	host, portStr, err := net.SplitHostPort(t.cfg.Addr)
	if err != nil {
		return permanent(fmt.Errorf("source address %q: %w", t.cfg.Addr, err))
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return permanent(fmt.Errorf("source address %q: port: %w", t.cfg.Addr, err))
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:                t.cfg.ServerID,
		Flavor:                  t.srv.flavor,
		Host:                    host,
		Port:                    uint16(port),
		User:                    t.cfg.User,
		Password:                t.cfg.Password,
		TLSConfig:               t.cfg.TLS,
		ParseTime:               true,
		TimestampStringLocation: time.UTC,
		HeartbeatPeriod:         time.Second,
		ReadTimeout:             10 * time.Second,
		DisableRetrySync:        true, // Run restarts from the committed position instead
		Logger:                  slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()

	s := &streamState{file: from.File, boundary: from, savedAt: time.Now(), checkedAt: time.Now(), lastEvent: time.Now()}
	var streamer *replication.BinlogStreamer
	if from.File == "" || (t.byGTID && from.GTID != "") { // a GTID start, or a resume on another server
		gs, perr := mysql.ParseGTIDSet(t.srv.flavor, from.GTID)
		if perr != nil {
			return permanent(fmt.Errorf("GTID set %q: %w", from.GTID, perr))
		}
		s.gset = gs
		streamer, err = syncer.StartSyncGTID(gs.Clone())
	} else {
		if from.GTID != "" {
			s.gset, _ = mysql.ParseGTIDSet(t.srv.flavor, from.GTID)
		}
		streamer, err = syncer.StartSync(mysql.Position{Name: from.File, Pos: from.Pos})
	}
	if s.gset == nil {
		s.gset, _ = mysql.ParseGTIDSet(t.srv.flavor, "")
	}
	if err != nil {
		return fmt.Errorf("start binlog stream at %s: %w", from.String(), err)
	}
	defer func() {
		if s.open { // never leave a half transaction: the restart re-reads it
			t.abort(context.WithoutCancel(ctx))
		}
	}()

	first := true
	for {
		wait := time.Second
		if s.open {
			wait = max(time.Until(s.openAt.Add(t.cfg.FlushInterval)), 0)
		}
		gctx, cancel := context.WithTimeout(ctx, wait)
		ev, err := streamer.GetEvent(gctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil { // shutting down: keep what is complete
				if s.open && !s.inTx {
					if cerr := t.commit(context.WithoutCancel(ctx), s); cerr != nil {
						t.log.Warn("tail: commit at shutdown failed; the next start reads those events again", "err", cerr)
					}
				}
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				if !s.inTx {
					t.setBehind(0, true)
				}
				if err := t.maybeCommit(ctx, s, true); err != nil {
					return err
				}
				if err := t.watchSource(ctx, s); err != nil {
					return err
				}
				continue
			}
			var myErr *mysql.MyError
			if errors.As(err, &myErr) && myErr.Code == mysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
				return permanent(t.purged(ctx, from, myErr, first))
			}
			if errors.As(err, &myErr) && (myErr.Code == mysql.ER_ACCESS_DENIED_ERROR || myErr.Code == mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR ||
				myErr.Code == mysql.ER_DBACCESS_DENIED_ERROR) {
				return permanent(fmt.Errorf("binlog stream from %s: %w", t.cfg.Addr, err))
			}
			return fmt.Errorf("binlog stream at %s: %w", s.boundary.String(), err)
		}
		first = false
		if err := t.handle(ctx, s, ev); err != nil {
			return err
		}
		if err := t.maybeCommit(ctx, s, false); err != nil {
			return err
		}
		if !s.inTx {
			if err := t.watchSource(ctx, s); err != nil {
				return err
			}
		}
	}
}

// purged turns the server's "cannot read from that position" into an error
// that says what happened and what to do.
func (t *Tail) purged(ctx context.Context, from Position, myErr *mysql.MyError, first bool) error {
	where := from.String()
	if from.File == "" {
		where = "GTID " + from.GTID
	}
	oldest := oldestBinlog(ctx, t.db)
	msg := fmt.Sprintf("the source no longer has the binlog at %s (server error %d: %s)", where, myErr.Code, myErr.Message)
	if oldest != "" {
		msg += fmt.Sprintf("; its oldest binlog is %s", oldest)
	}
	if !first {
		msg = fmt.Sprintf("the binlog stream failed at %s (server error %d: %s)", t.committed.String(), myErr.Code, myErr.Message)
	}
	return fmt.Errorf("%s. The tail stops rather than skip changes: %s", msg, gapHint(t.committed, t.cfg.RecoverMargin))
}

// handle applies one binlog event to the stream state, producing the change
// events of the configured table into the open Kafka transaction.
func (t *Tail) handle(ctx context.Context, s *streamState, ev *replication.BinlogEvent) error {
	h := ev.Header
	if h.EventType == replication.HEARTBEAT_EVENT || h.EventType == replication.HEARTBEAT_LOG_EVENT_V2 {
		// The server has nothing more to send: caught up.
		if !s.inTx {
			t.setBehind(0, true)
		}
		return nil
	}
	s.lastEvent = time.Now()
	if h.Timestamp > 0 {
		t.setBehind(time.Since(time.Unix(int64(h.Timestamp), 0)).Seconds(), false)
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		if !s.inTx {
			s.boundary.File, s.boundary.Pos = s.file, uint32(e.Position)
		}
	case *replication.MariadbGTIDEvent:
		s.curGTID = e.GTID.String()
		s.inTx = true
	case *replication.GTIDEvent:
		if next, err := e.GTIDNext(); err == nil {
			s.curGTID = next.String()
		}
		s.inTx = true
	case *replication.QueryEvent:
		switch q := string(e.Query); q {
		case "BEGIN":
			s.inTx, s.began = true, true
		default: // COMMIT of a non-transactional engine, a DDL statement, or DML logged as a statement
			var effect stmtEffect
			var dml bool
			if t.cfg.Table != "" {
				effect, dml = classifyStatement(q, string(e.Schema), t.cfg.Database, t.cfg.Table)
			}
			if t.generic() {
				gdml, err := t.genericStatement(ctx, s, h, q, string(e.Schema))
				if err != nil {
					return err
				}
				dml = dml || gdml
			}
			switch effect {
			case stmtDML, stmtPartition:
				return permanent(t.statementError(s, h, q, effect, t.cfg.Database, t.cfg.Table))
			case stmtTruncate:
				if t.cfg.OnTruncate == "fail" {
					return permanent(t.truncateRefused(s, h, q))
				}
				if err := t.truncateEvent(ctx, s, h); err != nil {
					return err
				}
			}
			if dml && s.began {
				return nil // another table's change inside its transaction: not the end of it
			}
			if effect == stmtShape {
				return t.ddl(ctx, s, h, truncate(strings.Join(strings.Fields(q), " "), 200))
			}
			t.endSourceTx(s, h)
		}
	case *replication.ExecuteLoadQueryEvent:
		// LOAD DATA logged as a statement (STATEMENT or MIXED format).
		if err := t.loadStatement(s, ev); err != nil {
			return permanent(err)
		}
	case *replication.XIDEvent:
		t.endSourceTx(s, h)
	case *replication.RowsEvent:
		if f := t.followedOf(e.Table); f != nil {
			return t.genericRows(ctx, s, h, e, f)
		}
		if e.Table == nil || t.cfg.Table == "" || string(e.Table.Schema) != t.cfg.Database || string(e.Table.Table) != t.cfg.Table {
			return nil
		}
		return t.rows(ctx, s, h, e)
	}
	return nil
}

// ddl takes a DDL on the followed table: what the tail has read before it
// is committed with the shape it was read by, and from here the shape is
// known only once a table map names the columns (ddl.go).
func (t *Tail) ddl(ctx context.Context, s *streamState, h *replication.EventHeader, ddl string) error {
	if s.open {
		if err := t.commit(ctx, s); err != nil {
			return err
		}
	}
	t.endSourceTx(s, h)
	t.lost = &shapeLost{ddl: ddl, after: Position{File: s.file, Pos: h.LogPos}}
	t.log.Info("tail: DDL on the followed table", "table", t.table(), "ddl", ddl, "at", t.lost.after.String(), "column_names_in_binlog", t.srv.rowMetadata == "FULL")
	return nil
}

// layoutOf returns the layout a rows event is read by: its table map's
// column names where it has them, else the shape the tail knows, checked
// against the table map.
func (t *Tail) layoutOf(s *streamState, h *replication.EventHeader, tm *replication.TableMapEvent) (layout, error) {
	at := Position{File: s.file, Pos: h.LogPos - h.EventSize}
	if t.named.same(tm) {
		t.named.tm, t.layout, t.lost = tm, t.named.l, nil
		return t.named.l, nil
	}
	if cols := tableMapColumns(tm); cols != nil {
		l, err := newLayout(cols, t.table())
		if err != nil {
			where := ""
			if t.lost != nil {
				where = fmt.Sprintf(" since the DDL at %s (%s)", t.lost.after, t.lost.ddl)
			}
			return l, permanent(fmt.Errorf("tail: binlog %s: %w%s, and Sluice carries every one of its columns: restore the column, then restart the tail with `sluice tail --reset --from <the position after the DDL that restores it>` and backfill the window of the changes in between", at, err, where))
		}
		t.named, t.layout, t.lost = namedLayout{tm: tm, l: l}, l, nil
		return l, nil
	}
	if t.lost != nil {
		from := t.lost.after
		if cv, ok := t.committed.Version(); ok {
			if lv, ok := from.Version(); ok && cv > lv {
				from = t.committed
			}
		}
		return layout{}, permanent(shapeLostError(t.table(), t.lost, at, t.srv.rowMetadata, from))
	}
	if why := t.layout.matches(tm); why != "" {
		return layout{}, permanent(shapeMismatchError(t.table(), at, why, t.srv.rowMetadata))
	}
	return t.layout, nil
}

func (t *Tail) endSourceTx(s *streamState, h *replication.EventHeader) {
	s.inTx, s.began = false, false
	if s.curGTID != "" && s.gset != nil {
		if err := s.gset.Update(s.curGTID); err != nil {
			t.log.Warn("tail: GTID not tracked", "gtid", s.curGTID, "err", err)
		}
	}
	s.curGTID = ""
	s.boundary = Position{File: s.file, Pos: h.LogPos, TsMs: int64(h.Timestamp) * 1000, Epoch: t.era.Epoch, Server: s.boundary.Server}
	if s.gset != nil {
		s.boundary.GTID = s.gset.String()
	}
	t.metrics.sourceTxs.Inc()
	t.mu.Lock()
	t.stats.SourceTxs++
	t.mu.Unlock()
}

// rows produces the change events of one rows event.
func (t *Tail) rows(ctx context.Context, s *streamState, h *replication.EventHeader, e *replication.RowsEvent) error {
	src := schema.Source{
		Connector: "mysql", Name: "sluice", TsMs: int64(h.Timestamp) * 1000, Snapshot: "false",
		DB: t.cfg.Database, Table: t.cfg.Table, ServerID: h.ServerID, GTID: s.curGTID, File: s.file, Pos: uint64(h.LogPos), Epoch: t.era.Epoch,
	}
	if _, ok := src.Version(); !ok {
		return permanent(fmt.Errorf("tail: binlog file %q at %d gives no source version (a file name ending in a sequence number is needed)", s.file, h.LogPos))
	}
	l, err := t.layoutOf(s, h, e.Table)
	if err != nil {
		return err
	}
	img := func(vals []any) (*schema.Row, error) {
		r, err := l.rowOf(vals)
		if err != nil {
			return nil, permanent(fmt.Errorf("tail: %s.%s row in binlog %s at %d: %w", t.cfg.Database, t.cfg.Table, s.file, h.LogPos, err))
		}
		return &r, nil
	}
	now := time.Now().UnixMilli()
	emit := func(i int, op schema.Op, before, after *schema.Row) {
		src.Row = i
		ev := schema.Event{Op: op, Before: before, After: after, Source: src, TsMs: now}
		t.produce(ctx, s, &ev)
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for i, vals := range e.Rows {
			r, err := img(vals)
			if err != nil {
				return err
			}
			emit(i, schema.OpCreate, nil, r)
		}
	case replication.EnumRowsEventTypeDelete:
		for i, vals := range e.Rows {
			r, err := img(vals)
			if err != nil {
				return err
			}
			emit(i, schema.OpDelete, r, nil)
		}
	case replication.EnumRowsEventTypeUpdate:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			b, err := img(e.Rows[i])
			if err != nil {
				return err
			}
			a, err := img(e.Rows[i+1])
			if err != nil {
				return err
			}
			if b.Key() != a.Key() {
				// The dedupe key changed: the old key is gone and a new one
				// exists, each in its own partition.
				emit(i/2, schema.OpDelete, b, nil)
				emit(i/2, schema.OpCreate, nil, a)
				continue
			}
			emit(i/2, schema.OpUpdate, b, a)
		}
	}
	return nil
}

func (t *Tail) produce(ctx context.Context, s *streamState, ev *schema.Event) {
	if !s.open {
		t.begin(s)
	}
	var key []byte
	if ev.Op != schema.OpTruncate { // a truncate has no key, as in Debezium
		key = schema.AppendKey(nil, ev.Key())
	}
	value := schema.AppendEvent(make([]byte, 0, 512), ev)
	t.cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, t.promise)
	s.count(0, ev.Op)
}

// count counts one event of op of table (an index of Tail.tables) in the
// open Kafka transaction.
func (s *streamState) count(table int, op schema.Op) {
	s.events++
	ops := &s.ops[table]
	switch op {
	case schema.OpCreate:
		ops[0]++
	case schema.OpUpdate:
		ops[1]++
	case schema.OpDelete:
		ops[2]++
	case schema.OpTruncate:
		ops[3]++
	}
}

// countEvents adds the committed transaction's events to the events
// metric, by table and op.
func (t *Tail) countEvents(s *streamState) {
	for ti, ops := range s.ops {
		for i, n := range ops {
			if n > 0 {
				t.events[ti][i].Add(float64(n))
			}
		}
	}
}

// opLabels are the ops of streamState.ops, in order, as metric labels.
var opLabels = []string{"c", "u", "d", "t"}

func (t *Tail) begin(s *streamState) {
	if err := t.cl.BeginTransaction(); err != nil {
		// Only possible when one is already open, which s.open rules out.
		t.setProdErr(err)
	}
	if len(s.ops) != len(t.tables) {
		s.ops = make([][4]int64, len(t.tables))
	}
	clear(s.ops)
	s.open, s.openAt, s.events = true, time.Now(), 0
}

func (t *Tail) promise(r *kgo.Record, err error) {
	if err != nil {
		t.setProdErr(fmt.Errorf("topic %s partition %d key %s: %w", r.Topic, r.Partition, r.Key, err))
	}
}

func (t *Tail) setProdErr(err error) {
	t.prodMu.Lock()
	if t.prodErr == nil {
		t.prodErr = err
	}
	t.prodMu.Unlock()
}

func (t *Tail) takeProdErr() error {
	t.prodMu.Lock()
	defer t.prodMu.Unlock()
	err := t.prodErr
	t.prodErr = nil
	return err
}

// maybeCommit commits the open Kafka transaction at a source transaction
// boundary once it is old or big enough (idle: the read timed out, commit
// whatever is complete), and saves the position alone now and then when only
// other tables change.
func (t *Tail) maybeCommit(ctx context.Context, s *streamState, idle bool) error {
	if s.inTx {
		return nil
	}
	if s.open {
		if idle || s.events >= t.cfg.FlushEvents || time.Since(s.openAt) >= t.cfg.FlushInterval {
			return t.commit(ctx, s)
		}
		return nil
	}
	if !s.boundary.samePlace(t.committed) && s.boundary.File != "" && time.Since(s.savedAt) >= t.cfg.SaveInterval {
		t.begin(s)
		return t.commit(ctx, s)
	}
	return nil
}

// commit writes the boundary position into the open transaction and commits
// it: the events and the position become visible together, or neither.
func (t *Tail) commit(ctx context.Context, s *streamState) error {
	t0 := time.Now()
	pos := t.withShapes(s.boundary)
	t.cl.Produce(ctx, &kgo.Record{Topic: t.st.Topic(), Key: []byte(PositionKey(t.cfg.Name)), Value: pos.encode()}, t.promise)
	err := t.endTransaction(ctx)
	s.open = false
	s.savedAt = time.Now()
	if err != nil {
		if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			return permanent(fmt.Errorf("tail: another process took over transactional id sluice-tail-%s (or it is not allowed): %w", t.cfg.Name, err))
		}
		return fmt.Errorf("kafka: commit events up to %s: %w", pos.String(), err)
	}
	t.committed = pos
	t.metrics.kafkaTxs.Inc()
	t.metrics.commit.Observe(time.Since(t0).Seconds())
	t.metrics.setPosition(pos)
	t.countEvents(s)
	t.mu.Lock()
	t.stats.Events += int64(s.events)
	t.stats.KafkaTxs++
	t.stats.Position = pos
	t.mu.Unlock()
	s.events = 0
	clear(s.ops)
	return nil
}

// store writes one record to the state topic in a transaction of its own.
func (t *Tail) store(ctx context.Context, key string, value []byte) error {
	if err := t.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t.cl.Produce(ctx, &kgo.Record{Topic: t.st.Topic(), Key: []byte(key), Value: value}, t.promise)
	return t.endTransaction(ctx)
}

// endTransaction flushes and commits, or aborts when a record failed or
// the commit did, leaving the client ready for the next transaction.
func (t *Tail) endTransaction(ctx context.Context) error {
	err := t.cl.Flush(ctx)
	if perr := t.takeProdErr(); perr != nil {
		err = perr
	}
	if err == nil {
		err = t.cl.EndTransaction(ctx, kgo.TryCommit)
	}
	if err != nil {
		t.abort(ctx)
	}
	return err
}

func (t *Tail) abort(ctx context.Context) {
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := t.cl.AbortBufferedRecords(actx); err != nil {
		t.log.Warn("tail: abort buffered records", "err", err)
	}
	if err := t.cl.EndTransaction(actx, kgo.TryAbort); err != nil {
		t.log.Warn("tail: abort transaction", "err", err)
	}
	t.takeProdErr()
}

func (t *Tail) setBehind(secs float64, caughtUp bool) {
	secs = max(secs, 0)
	t.metrics.behind.Set(secs)
	t.mu.Lock()
	t.stats.BehindSecs, t.stats.CaughtUp = secs, caughtUp
	t.mu.Unlock()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
