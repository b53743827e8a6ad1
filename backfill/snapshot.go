package backfill

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// Labels: each chunk's events carry a binlog position (schema.Source File
// and Pos, ordered by Source.Version) that the consumer compares with the
// versions of binlog changes of the same keys. A label must never be newer
// than what the chunk read: a read labelled after a change it did not see
// would overwrite that change. A label older than what was read is safe,
// because the tail brings every change after it, which then wins.
//
// One position for the whole run (taken at its start) is such a lower bound,
// but a loose one: a row updated during a long run is read with its new
// content and the run's old label, and a tail change between the two would
// then win over the newer read. So each chunk gets its own label:
//
//   - MariaDB (and Percona Server) report, inside a transaction started WITH
//     CONSISTENT SNAPSHOT, the binlog position the snapshot corresponds to
//     (the Binlog_snapshot_file and Binlog_snapshot_position status
//     variables). The chunk is read in such a transaction and labelled with
//     exactly that position: under REPEATABLE READ, every change before it
//     is in the read and none after it. (Under READ COMMITTED the read may
//     also see later commits: the label is then a lower bound, still safe.)
//   - MySQL has no such variables. The label is the binlog position read
//     with SHOW BINARY LOG STATUS (or SHOW MASTER STATUS) just before the
//     chunk's query: never newer than what the query then sees.
//   - Without a binlog, or without the privilege to read its position on
//     MySQL, events carry no position, as before: the consumer then applies
//     them in partition order.
type labelMode int

const (
	labelUnknown  labelMode = iota // not probed yet
	labelNone                      // no position: events are unversioned
	labelSnapshot                  // the consistent snapshot's position (MariaDB, Percona)
	labelBefore                    // the binlog position just before the read (MySQL)
)

func (m labelMode) String() string {
	switch m {
	case labelNone:
		return "none"
	case labelSnapshot:
		return "consistent snapshot per chunk"
	case labelBefore:
		return "binlog position before each chunk"
	}
	return "unknown"
}

const (
	startSnapshot  = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
	snapshotStatus = "SHOW STATUS LIKE 'binlog\\_snapshot\\_%'"
)

// errNoSnapshotPosition is a server that takes consistent snapshots but
// reports no binlog position for them (MySQL, or binlogging off).
var errNoSnapshotPosition = errors.New("no binlog position for the snapshot")

// Epochs gives the version epoch of the source's binlog positions
// (producer.State.ResolveEra, kept in the state topic, through cmd/sluice):
// it advances when the source is another server or its binlog went back,
// so that a run's labels are newer than every version made before.
type Epochs interface {
	// Epoch returns the epoch for positions of srv as it is now, and why
	// the epoch began.
	Epoch(ctx context.Context, srv schema.Server) (epoch uint16, since string, err error)
}

// SetEpochs makes Run label its chunks with the epoch e gives, and check
// at the end that it did not change during the run. Call it before Run.
// Without it, labels carry epoch 0.
func (b *Backfill) SetEpochs(e Epochs) { b.epochs = e }

// epochNow asks b.epochs for the epoch of the source as it is now.
func (b *Backfill) epochNow(ctx context.Context) (uint16, string, error) {
	srv, err := schema.ReadServer(ctx, b.db)
	if err != nil {
		return 0, "", fmt.Errorf("backfill: %w", err)
	}
	epoch, since, err := b.epochs.Epoch(ctx, srv)
	if err != nil {
		return 0, "", fmt.Errorf("backfill: version epoch of %s: %w", srv.Identity, err)
	}
	return epoch, since, nil
}

// checkEpoch is the end of a run: the source must still be in the epoch the
// run labelled its reads with. A failover or a binlog reset during the run
// makes some labels older than changes they include, so the tail's older
// events could win over them: the run fails, and a run again labels in the
// new epoch.
func (b *Backfill) checkEpoch(ctx context.Context) error {
	if b.epochs == nil || b.labels == labelNone {
		return nil
	}
	epoch, since, err := b.epochNow(ctx)
	if err != nil {
		return err
	}
	if epoch != b.position.Epoch {
		return fmt.Errorf("backfill: the source changed during the run (version epoch %d → %d: %s): reads labelled in epoch %d may lose to older changes; run the window again",
			b.position.Epoch, epoch, since, b.position.Epoch)
	}
	return nil
}

// detectLabels picks how chunks are labelled, once per run, and records the
// source's binlog position at the start of the run (logged, and the first
// chunk's label is never older), with the epoch of its positions. It is not
// an error to find no position: without a binlog or the privilege, events
// stay unversioned. It is an error when the epoch cannot be resolved.
func (b *Backfill) detectLabels(ctx context.Context) error {
	if err := b.detectPosition(ctx); err != nil || b.epochs == nil || b.labels == labelNone {
		return err
	}
	epoch, since, err := b.epochNow(ctx)
	if err != nil {
		return err
	}
	b.position.Epoch = epoch
	b.log.Info("backfill: version epoch", "epoch", epoch, "since", since)
	return nil
}

func (b *Backfill) detectPosition(ctx context.Context) error {
	var start schema.Source
	_, err := b.inSnapshot(ctx, func(label schema.Source, _ *sql.Conn) error { start = label; return nil })
	if err == nil {
		b.labels, b.position.File, b.position.Pos = labelSnapshot, start.File, start.Pos
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, q := range schema.BinlogStatusQueries {
		file, pos, ok, err := schema.BinlogStatus(ctx, b.db, q)
		if err != nil {
			continue // unknown statement on this server, or not permitted
		}
		if ok {
			b.labels, b.statusQuery = labelBefore, q
			b.position.File, b.position.Pos = file, pos
		}
		break
	}
	if b.labels == labelUnknown {
		b.labels = labelNone
	}
	return nil
}

// inSnapshot runs read on a connection of its own, inside a read-only
// transaction started WITH CONSISTENT SNAPSHOT, and hands it the snapshot's
// binlog position as a label. The transaction is committed after read, or
// rolled back on any failure; a connection whose rollback fails is
// discarded rather than returned to the pool inside a transaction.
func (b *Backfill) inSnapshot(ctx context.Context, read func(label schema.Source, conn *sql.Conn) error) (schema.Source, error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return schema.Source{}, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, startSnapshot); err != nil {
		return schema.Source{}, fmt.Errorf("start a consistent snapshot: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, "ROLLBACK"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	label := b.position
	if label.File, label.Pos, err = snapshotPosition(ctx, conn); err != nil {
		return schema.Source{}, err
	}
	if err := read(label, conn); err != nil {
		return schema.Source{}, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return schema.Source{}, fmt.Errorf("end the consistent snapshot: %w", err)
	}
	done = true
	return label, nil
}

// snapshotPosition reads the binlog position of the connection's consistent
// snapshot.
func snapshotPosition(ctx context.Context, conn *sql.Conn) (string, uint64, error) {
	rows, err := conn.QueryContext(ctx, snapshotStatus)
	if err != nil {
		return "", 0, fmt.Errorf("binlog position of the snapshot: %w", err)
	}
	defer rows.Close()
	var file, pos string
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return "", 0, fmt.Errorf("binlog position of the snapshot: %w", err)
		}
		switch strings.ToLower(name) {
		case "binlog_snapshot_file":
			file = value
		case "binlog_snapshot_position":
			pos = value
		}
	}
	if err := rows.Err(); err != nil {
		return "", 0, fmt.Errorf("binlog position of the snapshot: %w", err)
	}
	n, err := strconv.ParseUint(pos, 10, 64)
	if file == "" || err != nil {
		return "", 0, fmt.Errorf("%w (binlog_snapshot_file %q, binlog_snapshot_position %q)", errNoSnapshotPosition, file, pos)
	}
	return file, n, nil
}
