// Package consumer is a member of a Kafka consumer group that applies change
// events to the target tables.
//
// The member reads every configured table's topic (Config.Tables, tables.go),
// decodes each record with its table's schema.ChangeDecoder and applies it
// with its table's TableWriter, one table per transaction: a multi-row INSERT
// … ON DUPLICATE KEY UPDATE for creates, updates and reads, and a delete by
// dedupe key for deletes, with the rows sorted by key so that members take
// row locks in the same order. The rows the target already has exactly as
// the batch says are left out of the INSERT (tablelookup.go). Only after the
// last of the batch's transactions has committed are the offsets of exactly
// that batch committed to Kafka.
//
// Guarantees: at-least-once. An offset is never committed ahead of the
// database: the group rebalances only between batches (BlockRebalanceOnPoll),
// and on shutdown or revocation an in-flight batch is abandoned before its
// database commit, so its records are delivered again. Applying a record
// twice is harmless because the write is an upsert by dedupe key. A batch
// flushes when full or when Linger has passed since its first record, so a
// quiet topic is not held back.
//
// Deletes and backfill reads meet safely. Every change carries a version
// when its source has a binlog position (schema.Source.Version: the binlog
// file's sequence and offset), and the newest version of a key wins, however
// late it arrives: an upsert applies only when it is not older than the row,
// a delete removes the row only when the row is not newer, and a versioned
// delete leaves a tombstone in <table>_tombstones with its version, so that a
// backfill read taken before the delete (an older version, produced later)
// is dropped instead of bringing the row back. An upsert not older than the
// tombstone applies and removes it. The target table itself stays an exact
// copy of the source (deletes are hard deletes), which is what sluice verify
// compares. Within a batch the same rule picks the one change of each key
// that is written. Changes without a version (a Debezium topic without
// binlog positions) apply in partition order, as before: such a delete is a
// hard delete and leaves no tombstone, which would have no version to
// compare with. At equal versions the later change in the partition wins
// everywhere; a backfill read's version (a snapshot's binlog position) is
// never equal to a change's, since a transaction's events start after the
// position where the previous one ends.
//
// A record that cannot be applied — it does not decode (reason decode), a
// table's transforms or rules refuse it (reason validation), or the target
// refuses its row (reason database: data too long, a constraint; the batch
// is split to find it, isolate.go) — goes to the dead-letter topic
// (Config.DeadLetterTopic) with its key, value and headers and headers
// naming the reason and its topic, partition and offset. The batch goes on without it. Dead letters are acknowledged
// before the batch's offsets are committed, so no record is ever lost or
// silently dropped.
//
// The member decides that a record is dead and builds its dead letter
// (dlq.go); writing it is the producer's (Config.DeadLetters, which
// cmd/sluice wires to a producer.DeadLetterWriter per member). The
// dead-letter topic never becomes the failure. A dead letter too large for
// it (over its max.message.bytes, which the writer reads at start and uses
// as its batch limit, or refused by the broker as MESSAGE_TOO_LARGE) is sent
// as a reference instead: the same headers, the value's size and SHA-256,
// and its first 1 KiB as the value. A member sends each dead letter once: a dead letter refused as too large is
// tried again alone, without its acknowledged batch-mates, and a record
// whose dead letter the member has had acknowledged is not dead-lettered
// again when it comes back after an offset commit that failed. Across
// members and restarts the guarantee is at-least-once, as for rows: a
// member that stops between a dead letter's acknowledgement and its batch's
// offset commit leaves the record to its next owner, which dead-letters it
// again (sluice.dlq.topic, .partition and .offset tell the copies apart
// from different records).
//
// Metrics:
//
//	sluice_consumer_records_total            records polled
//	sluice_consumer_rows_upserted_total      rows written by the upsert (new, or changed by a newer change)
//	sluice_consumer_rows_unchanged_total     rows the target already had as the record says: nothing written
//	sluice_consumer_rows_inserted_total      rows new to the target
//	sluice_consumer_duplicates_merged_total  records merged into a row the target or the batch already had
//	sluice_consumer_rows_deleted_total       rows deleted by delete events
//	sluice_consumer_skipped_tombstoned_total upserts dropped: their key was deleted by a newer change (or the table truncated)
//	sluice_consumer_truncates_total          truncate events applied (tabletruncate.go)
//	sluice_consumer_batches_total            batches committed
//	sluice_consumer_bulk_inserts_total       batches of new rows written as MariaDB binary bulk inserts
//	sluice_consumer_bulk_load_fallbacks_total  bulk inserts rolled back to the upsert
//	sluice_consumer_batch_records            records per batch (histogram)
//	sluice_consumer_db_commit_seconds        time of one batch transaction (histogram)
//	sluice_consumer_db_errors_total          failed transaction attempts
//	sluice_consumer_db_retries_total         transaction attempts retried
//	sluice_consumer_offset_commit_errors_total  offset commits that failed after the DB commit
//	sluice_consumer_dlq_records_total{reason}    records sent to the dead-letter topic
//	sluice_consumer_dlq_references_total     of those, sent as references: too large for the dead-letter topic (registered by producer.NewDeadLetterMetrics)
//	sluice_consumer_db_isolations_total      failed writes split in halves to find the rows the target refused
//	sluice_consumer_lag_records{group,topic,partition}  records the group has not committed (WatchLag)
//	sluice_consumer_table_records_total{table}          records polled, by target table
//	sluice_consumer_table_rows_upserted_total{table}    rows written by upserts, by target table
//	sluice_consumer_table_rows_deleted_total{table}     rows deleted, by target table
//	sluice_consumer_table_dlq_records_total{table,reason}  dead letters, by target table and reason
//	sluice_kafka_*                           franz-go client metrics (kprom)
package consumer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/schema"
)

// Config says which topic and group to consume and where to write.
type Config struct {
	Brokers []string
	// Conn are the connection's options every client of the member takes:
	// TLS and SASL (cmd/sluice builds them from its flags); Security says
	// what they are, for errors, never with a secret.
	Conn          []kgo.Opt
	Security      string
	Group         string
	ClientID      string
	BatchSize     int           // records per transaction
	Linger        time.Duration // flush a non-full batch this long after its first record
	DBAttempts    int           // tries of one batch transaction on transient errors
	DBBackoff     time.Duration // first retry delay, doubled each time
	CommitTimeout time.Duration // how long an offset commit may take after the DB commit
	DialTimeout   time.Duration // how long to wait for the brokers at start
	FetchMaxBytes int32         // bytes one fetch may return: bounds the buffered records (see DefaultFetchMaxBytes)
	NoBulkLoad    bool          // write new rows with the upsert too, never with a bulk insert
	// Wire, when the target's pool was opened with Wire.Dial as its
	// mysql.Config.DialFunc, lets new rows go to MariaDB as binary bulk
	// inserts (wire.go, tablebulk.go). nil: new rows go through the upsert.
	Wire     *Wire
	DLQTopic string // dead-letter topic; empty means Group + ".dlq"
	// DeadLetters writes the member's dead letters to DeadLetterTopic():
	// required; cmd/sluice wires the producer's writer.
	DeadLetters DeadLetters
	// InstanceID, when set, makes the member static (KIP-345, Kafka's
	// group.instance.id): a process restarted after a kill joins with the
	// same id and takes over the dead member's place and partitions at
	// once, instead of waiting for its session to time out. It must be
	// unique among the group's live members: a second member joining with
	// it fences the first (which then stops with FENCED_INSTANCE_ID). A
	// member that stops short of a kill leaves the group all the same.
	InstanceID string
	// Tables are what the member applies (tables.go): it reads every
	// table's Topic and applies each record with its table's TableWriter,
	// one table per transaction. Required: cmd/sluice resolves them from
	// the configuration file, or the built-in one.
	Tables []*schema.Table
}

// DefaultConfig returns the defaults: 10,000-record batches, 1 s linger.
func DefaultConfig() Config {
	return Config{
		Brokers:       []string{"127.0.0.1:9092"},
		Group:         "sluice",
		ClientID:      "sluice-consumer",
		BatchSize:     10000,
		Linger:        time.Second,
		DBAttempts:    5,
		DBBackoff:     100 * time.Millisecond,
		CommitTimeout: 60 * time.Second, // above the 45 s session timeout a rebalance may wait out
		DialTimeout:   10 * time.Second,
		FetchMaxBytes: DefaultFetchMaxBytes,
	}
}

// DefaultFetchMaxBytes bounds one fetch at 2 MiB, which snappy or lz4 unpack to about
// one 10,000-record batch. The fetched records are the largest thing a member
// holds, and the collector's work grows with them: with 8 MiB, franz-go's
// decompressed copies alone were 80 MiB of a 1M-row run's heap, GC took a
// quarter of Sluice's CPU against the 160 MiB soft limit, and the run was
// 1.5 times slower (README, Performance). A larger fetch gains nothing while
// the target is the slower side.
const DefaultFetchMaxBytes = 2 << 20

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("brokers: at least one is required")
	case len(c.Tables) == 0:
		return errors.New("tables: at least one resolved table is required")
	case c.Group == "":
		return errors.New("group: required")
	case c.BatchSize < 1:
		return fmt.Errorf("batch size: must be at least 1, got %d", c.BatchSize)
	case c.Linger <= 0:
		return fmt.Errorf("linger: must be positive, got %s", c.Linger)
	case c.DBAttempts < 1:
		return fmt.Errorf("db attempts: must be at least 1, got %d", c.DBAttempts)
	case c.FetchMaxBytes < 1<<10:
		return fmt.Errorf("fetch max bytes: must be at least 1 KiB, got %d", c.FetchMaxBytes)
	}
	return c.validateTables()
}

// validateWriters reports a missing dead-letter writer: not in Validate,
// which checks the settings before the wiring exists.
func (c Config) validateWriters() error {
	if c.DeadLetters == nil {
		return fmt.Errorf("dead letters: no writer for the dead-letter topic %s", c.DeadLetterTopic())
	}
	return nil
}

// DeadLetterTopic is where the member sends records it cannot apply.
func (c Config) DeadLetterTopic() string {
	if c.DLQTopic != "" {
		return c.DLQTopic
	}
	return c.Group + ".dlq"
}

// Stats counts what a member did.
type Stats struct {
	Records   int64 // records polled and applied (or skipped as tombstones)
	Upserted  int64 // rows written by upserts: new, or changed by a newer change
	Inserted  int64 // rows new to the target
	Merged    int64 // records merged into an existing row or a later record of the same key
	Unchanged int64 // of Merged: rows the target already had as the record says (nothing written)
	Deleted   int64
	// Tombstoned counts upserts dropped because a newer delete of their key
	// left a tombstone: backfill reads taken before the delete.
	Tombstoned int64
	Batches    int64
	Dead       int64 // records sent to the dead-letter topic
}

// Add adds o's counts to st: the counts of a process's members together.
func (st *Stats) Add(o Stats) {
	st.Records += o.Records
	st.Upserted += o.Upserted
	st.Inserted += o.Inserted
	st.Merged += o.Merged
	st.Unchanged += o.Unchanged
	st.Deleted += o.Deleted
	st.Tombstoned += o.Tombstoned
	st.Batches += o.Batches
	st.Dead += o.Dead
}

// Consumer is one group member. Create it with New and call Run once.
type Consumer struct {
	cfg Config
	cl  *kgo.Client
	// path decodes the records and applies a batch of them (tables.go).
	// The Run loop, membership, dead letters and offset commits are the
	// member's.
	path    *tablePath
	sent    sentSet // dead letters acknowledged, offsets not yet committed
	metrics *Metrics
	log     *slog.Logger
	stats   struct {
		records, upserted, inserted, merged, unchanged, deleted, tombstoned, batches, dead atomic.Int64
	}
}

// New joins nothing yet: it builds the client and checks that the brokers
// answer, naming them when none does. db is the target.
// m may be nil; several members of one process share one Metrics.
func New(ctx context.Context, cfg Config, db *sql.DB, m *Metrics, log *slog.Logger) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validateWriters(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	c := &Consumer{cfg: cfg, metrics: m, log: log, sent: sentSet{}}
	tp, err := newTablePath(ctx, c, db)
	if err != nil {
		return nil, err
	}
	c.path = tp
	topics := tp.topics()
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers (the tail writes in transactions) are kept so
		// that their offsets are committed too: without them a caught-up
		// group stays one offset short of every transactional partition's
		// end, and `run` would wait for it forever.
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.DialTimeout(cfg.DialTimeout),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
	}
	opts = append(opts, cfg.Conn...)
	if hook := m.kafkaHook(); hook != nil {
		opts = append(opts, kgo.WithHooks(hook))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if c.cl, err = kgo.NewClient(opts...); err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := c.cl.Ping(pctx); err != nil {
		c.cl.Close()
		return nil, fmt.Errorf("kafka brokers %v%s unreachable: %w", cfg.Brokers, security(cfg.Security), err)
	}
	return c, nil
}

// Stats returns what the member has done so far.
func (c *Consumer) Stats() Stats {
	s := &c.stats
	return Stats{Records: s.records.Load(), Upserted: s.upserted.Load(), Inserted: s.inserted.Load(),
		Merged: s.merged.Load(), Unchanged: s.unchanged.Load(), Deleted: s.deleted.Load(), Tombstoned: s.tombstoned.Load(),
		Batches: s.batches.Load(), Dead: s.dead.Load()}
}

// Run consumes until ctx is cancelled (returning nil) or a record or the
// database fails (returning the error). Either way the in-flight batch is
// left uncommitted unless its database transaction had already committed.
func (c *Consumer) Run(ctx context.Context) (err error) {
	defer func() { c.close(ctx, err) }()
	b := newBatch(c.cfg.BatchSize, c.cfg.Linger)
	topics := strings.Join(c.path.topics(), ",")
	c.log.Info("consumer: joining group", "group", c.cfg.Group, "topic", topics, "batch_size", c.cfg.BatchSize, "linger", c.cfg.Linger)
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if b.records > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, b.deadline())
		}
		fetches := c.cl.PollRecords(pollCtx, b.room())
		cancel()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			if b.records > 0 {
				c.log.Info("consumer: shutting down; abandoning the uncommitted batch, its records will be delivered again", "records", b.records)
			}
			return nil
		}
		if err := c.fetchErrors(fetches); err != nil {
			return err
		}
		var recErr error
		caughtUp := true // every partition polled is read up to its end
		polled := time.Now()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				if recErr != nil {
					return
				}
				recErr = c.path.take(ctx, b, r, polled)
			}
			if n := len(p.Records); n > 0 {
				end := p.HighWatermark
				if p.LastStableOffset >= 0 && p.LastStableOffset < end {
					end = p.LastStableOffset // an open transaction: nothing past it can be read yet
				}
				caughtUp = caughtUp && p.Records[n-1].Offset+1 >= end
			}
		})
		if recErr != nil {
			return recErr
		}
		// Caught up (what was polled reaches the partitions' ends and nothing
		// more is buffered): waiting out the linger time would only add
		// latency, since no more records are there to fill the batch. Under
		// a backlog the group is behind and batches still fill.
		if b.due(time.Now()) || (b.records > 0 && caughtUp && c.cl.BufferedFetchRecords() == 0) {
			if err := c.flush(ctx, b); err != nil {
				return err
			}
		}
		if b.records == 0 {
			c.cl.AllowRebalance()
		}
	}
}

// fetchErrors returns the first fetch error that should stop the member.
// Retriable broker errors are retried by the client itself and only logged.
func (c *Consumer) fetchErrors(fetches kgo.Fetches) error {
	for _, fe := range fetches.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			// the poll deadline of a lingering batch
		case kerr.IsRetriable(fe.Err):
			c.log.Warn("consumer: retriable fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		case errors.Is(fe.Err, kerr.FencedInstanceID):
			return fmt.Errorf("consumer: group %s: another member joined with this member's instance id %s (a second process with the same --instance-id and --group), and took its place: %w",
				c.cfg.Group, c.cfg.InstanceID, fe.Err)
		default:
			var dl *kgo.ErrDataLoss
			if errors.As(fe.Err, &dl) {
				c.log.Error("consumer: data loss reported by the broker; consuming from the reset offset", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
				continue
			}
			return fmt.Errorf("consumer: fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
	}
	return nil
}

// setAside takes record r into the batch with nothing to apply and a dead
// letter for it, for reason, unless this member has had its dead letter
// acknowledged already. It reports whether it made a dead letter.
func (c *Consumer) setAside(b *batch, r *kgo.Record, reason string, err error, now time.Time) bool {
	b.add(r, now)
	dl := c.letter(r, reason, err, now)
	if dl == nil {
		return false
	}
	b.dead = append(b.dead, dl)
	return true
}

// flush sends the batch's dead letters, writes the rest to the database and
// then commits the offsets of all of it.
func (c *Consumer) flush(ctx context.Context, b *batch) error {
	if err := c.sendDeadLetters(ctx, b.dead); err != nil {
		if ctx.Err() != nil {
			return nil // shutting down: nothing of the batch is committed
		}
		return fmt.Errorf("consumer: group %s, %s: %w (offsets not committed)", c.cfg.Group, b.span(), err)
	}
	if n := len(b.dead); n > 0 {
		first, _ := Header(b.dead[0], schema.DLQHeaderError)
		c.log.Warn("consumer: records sent to the dead-letter topic", "topic", c.cfg.DeadLetterTopic(), "records", n, "first", first)
	}
	res, late, err := c.path.apply(ctx, b)
	if err != nil {
		if ctx.Err() != nil {
			c.log.Info("consumer: shutting down during a batch write; nothing of it was committed", "records", b.records)
			return nil
		}
		return fmt.Errorf("consumer: group %s, %s: %w (offsets not committed)", c.cfg.Group, b.span(), err)
	}
	if err := c.sendLate(ctx, b, late); err != nil {
		return err
	} else if len(late) > 0 && ctx.Err() != nil {
		// Shutting down while the late dead letters were sent: they may not
		// all be acknowledged, so the offsets stay uncommitted.
		return nil
	}
	// The database has the batch: commit its offsets even if shutdown has
	// begun, within CommitTimeout.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CommitTimeout)
	defer cancel()
	if err := c.commit(cctx, b); err == nil {
		c.sent.committed(b.offsets) // committed: only a replay (a new member) brings these back
	} else {
		c.metrics.commitErrors.Inc()
		if errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.UnknownMemberID) ||
			errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID) ||
			(errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
			// The group moved on (a lost session), or the commit waited out
			// CommitTimeout behind a rebalance that waits for a killed
			// member's session to expire: whoever owns the partitions next
			// resumes from the last commit and applies these records again.
			c.log.Warn("consumer: offset commit rejected after the DB commit; the records will be applied again", "err", err)
		} else {
			return fmt.Errorf("consumer: group %s: %w", c.cfg.Group, err)
		}
	}
	s := &c.stats
	s.records.Add(int64(b.records - b.markers))
	s.upserted.Add(res.Upserted)
	s.inserted.Add(res.Inserted)
	s.merged.Add(res.Merged)
	s.unchanged.Add(res.Unchanged)
	s.deleted.Add(res.Deleted)
	s.tombstoned.Add(res.Tombstoned)
	s.batches.Add(1)
	s.dead.Add(int64(len(b.dead)))
	m := c.metrics
	m.upserted.Add(float64(res.Upserted))
	m.inserted.Add(float64(res.Inserted))
	m.merged.Add(float64(res.Merged))
	m.unchanged.Add(float64(res.Unchanged))
	m.deleted.Add(float64(res.Deleted))
	m.tombstoned.Add(float64(res.Tombstoned))
	m.batches.Inc()
	m.batchRecords.Observe(float64(b.records))
	c.log.Debug("consumer: batch committed", "records", b.records, "upserted", res.Upserted, "inserted", res.Inserted,
		"unchanged", res.Unchanged, "merged", res.Merged, "deleted", res.Deleted, "skipped_tombstoned", res.Tombstoned)
	b.reset()
	return nil
}

// commit commits exactly the batch's offsets and checks every partition's
// answer: a commit can fail for one partition and succeed for another.
func (c *Consumer) commit(ctx context.Context, b *batch) error {
	var rerr error
	c.cl.CommitOffsetsSync(ctx, b.offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = fmt.Errorf("commit offsets: %w", err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = fmt.Errorf("commit offset %d for %s/%d: %w", b.offsets[t.Topic][p.Partition].Offset, t.Topic, p.Partition, err)
				}
			}
		}
	})
	return rerr
}
