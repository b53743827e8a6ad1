package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

// RedriveConfig says which dead-letter topic to re-drive and as which group.
type RedriveConfig struct {
	Brokers     []string
	Conn        []kgo.Opt // the connection's TLS and SASL (see Config.Conn)
	Security    string    // what Conn is, for errors
	DLQTopic    string
	Group       string        // the re-drive's own group: its commits make a re-drive resumable
	DialTimeout time.Duration // how long to wait for the brokers at start
	// Resend produces the re-driven records back to their topics:
	// required; cmd/sluice wires the producer's (producer.Resender).
	Resend Resender
	// Topics, when set, re-drives only the dead letters of records from
	// these topics (by their schema.DLQHeaderTopic): one configured
	// table's, say. The others are passed over and counted as Other; Group
	// should then be the selection's own (cmd/sluice names it after the
	// table), since the group commits past them and another selection's
	// re-drive must still find them.
	Topics []string
	// Skipped, if set, is told of every dead letter the re-drive passes
	// over without sending it (a reference, a duplicate, a record with no
	// Sluice headers), with why, as it happens: the caller prints them.
	Skipped func(dl *kgo.Record, why string)
}

// Resender produces re-driven dead letters, each to its own Topic, and
// waits for every acknowledgement.
type Resender interface {
	Resend(ctx context.Context, recs []*kgo.Record) error
}

// RedriveResult counts what a re-drive did with the dead letters it read.
type RedriveResult struct {
	Redriven int // sent back to their topic
	// References are dead letters too large for the dead-letter topic when
	// they were written: only the first bytes of their value are there, so
	// they cannot be sent back. Their records are at their coordinates in
	// the source topic (within retention); the cause must be fixed there.
	References int
	// Duplicates are second dead letters of a record already re-driven in
	// this run (a record dead-lettered again after a restart or a replay):
	// sent once.
	Duplicates int
	Foreign    int // records without Sluice's headers: nothing says where they belong
	// Other are dead letters of topics outside Topics: another table's,
	// left for its own re-drive. Not counted in Skipped.
	Other int
}

// Skipped is how many dead letters were passed over.
func (r RedriveResult) Skipped() int { return r.References + r.Duplicates + r.Foreign }

// Redrive produces every dead letter present when it starts back to the
// topic it came from (its schema.DLQHeaderTopic), with its original key, value and
// headers, once the cause is fixed. The group's offsets on the dead-letter
// topic are committed only after the re-produced records are acknowledged,
// so an interrupted re-drive resumes where it stopped. Records that fail
// again come back to the dead-letter topic after it ends, not into this
// re-drive.
//
// A reference (IsReference) is not sent: its value is not in the topic. It
// is counted and passed to cfg.Skipped, never dropped unseen; the re-drive
// goes on with the others and commits past it, so the next re-drive does
// not report it again (it stays in the dead-letter topic). So are the
// records of a source record already sent in this run, and records without
// Sluice's headers.
func Redrive(ctx context.Context, cfg RedriveConfig) (RedriveResult, error) {
	var res RedriveResult
	skipped := func(dl *kgo.Record, why string) {
		if cfg.Skipped != nil {
			cfg.Skipped(dl, why)
		}
	}
	if cfg.Resend == nil {
		return res, fmt.Errorf("re-drive %s: no writer to send the records back with", cfg.DLQTopic)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.DLQTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.DialTimeout(cfg.DialTimeout),
	}, cfg.Conn...)...)
	if err != nil {
		return res, fmt.Errorf("kafka client for %v: %w", cfg.Brokers, err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return res, fmt.Errorf("kafka brokers %v%s unreachable: %w", cfg.Brokers, security(cfg.Security), err)
	}
	adm := kadm.NewClient(cl)
	ends, err := EndOffsets(ctx, adm, cfg.DLQTopic)
	if err != nil {
		return res, err
	}
	sent := sentSet{} // source records re-driven in this run; bounded by the topic's dead letters
	for {
		behind, err := Behind(ctx, adm, cfg.Group, cfg.DLQTopic, ends)
		if err != nil {
			return res, err
		}
		if len(behind) == 0 {
			return res, nil
		}
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(fctx)
		cancel()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return res, fmt.Errorf("fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		var out, done []*kgo.Record
		var refs, dups, foreign, other int
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return // dead-lettered after the re-drive began
			}
			done = append(done, r)
			to, ok := Header(r, schema.DLQHeaderTopic)
			switch {
			case !ok:
				foreign++
				skipped(r, fmt.Sprintf("%s/%d@%d has no %s header: nothing says where it belongs", r.Topic, r.Partition, r.Offset, schema.DLQHeaderTopic))
				return
			case len(cfg.Topics) > 0 && !slices.Contains(cfg.Topics, to):
				other++
				return
			case IsReference(r):
				refs++
				size, _ := Header(r, schema.DLQHeaderValueSize)
				hash, _ := Header(r, schema.DLQHeaderValueHash)
				key := r.Key
				if len(key) > 80 {
					key = key[:80]
				}
				skipped(r, fmt.Sprintf("%s/%d@%d is a reference, not re-driven: record %s key %q had a value of %s bytes (sha256 %s), too large for %s, of which only the first bytes are kept; the record itself is still at %s within its topic's retention: fix it at the source",
					r.Topic, r.Partition, r.Offset, coordinates(r), key, size, hash, r.Topic, coordinates(r)))
				return
			case sent.hasFor(r):
				dups++
				skipped(r, fmt.Sprintf("record %s was dead-lettered more than once (again at %s/%d@%d): re-driven once", coordinates(r), r.Topic, r.Partition, r.Offset))
				return
			}
			sent.add(r)
			headers := make([]kgo.RecordHeader, 0, len(r.Headers))
			for _, h := range r.Headers {
				if !strings.HasPrefix(h.Key, schema.DLQHeaderPrefix) {
					headers = append(headers, h)
				}
			}
			out = append(out, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: headers})
		})
		if err := cfg.Resend.Resend(ctx, out); err != nil {
			return res, fmt.Errorf("re-drive to the original topic: %w", err)
		}
		if err := cl.CommitRecords(ctx, done...); err != nil {
			return res, fmt.Errorf("commit re-drive offsets of group %s: %w", cfg.Group, err)
		}
		res.Redriven += len(out)
		res.References += refs
		res.Duplicates += dups
		res.Foreign += foreign
		res.Other += other
	}
}
