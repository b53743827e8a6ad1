package tail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// The tail's side of failover-safe versions (producer/epoch.go): every
// event and every committed position carries the epoch of the binlog it was
// read from. The tail looks at the source when it starts, before each
// restart of the stream, and every sourceCheckInterval while it streams,
// and takes a new epoch when the source is another server (a failover: it
// then resumes by GTID) or when the source's binlog went back behind the
// tail's position (RESET MASTER, a rebuilt or restored server: it then
// reads the new binlog from its start).

// sourceCheckInterval is how often a streaming tail compares the source
// with its position: a binlog reset does not end the replication
// connection, which goes on sending heartbeats from the deleted file.
const sourceCheckInterval = 5 * time.Second

// errSourceChanged ends a stream so that Run restarts it on the source as
// it is now.
var errSourceChanged = errors.New("the source changed under the stream")

// sourceChange is how the source differs from what the tail read.
type sourceChange int

const (
	sourceSame    sourceChange = iota
	sourceMoved                // another server: a failover, a new server_id, MySQL ↔ MariaDB
	sourceRewound              // the same server, its binlog behind the tail's position
)

// sourceNow reads the source's identity, binlog end and executed GTID set.
func (t *Tail) sourceNow(ctx context.Context) (schema.Server, mysql.GTIDSet, error) {
	now, err := schema.ReadServer(ctx, t.db)
	if err != nil || !t.srv.gtid {
		return now, nil, err
	}
	q := "SELECT @@GLOBAL.gtid_executed"
	if t.srv.flavor == "mariadb" {
		q = "SELECT @@GLOBAL.gtid_binlog_pos"
	}
	var set string
	if err := t.db.QueryRowContext(ctx, q).Scan(&set); err != nil {
		return now, nil, fmt.Errorf("source: executed GTID set: %w", err)
	}
	gs, err := mysql.ParseGTIDSet(t.srv.flavor, set)
	if err != nil {
		return now, nil, fmt.Errorf("source: executed GTID set %q: %w", set, err)
	}
	return now, gs, nil
}

// compare tells how the source now differs from the position at, and why.
// deep adds, on MariaDB, the GTID position the server finds at at's file
// and offset (BINLOG_GTID_POS): it differs from the one the tail stored
// there when the file is another one under the same name, which is what a
// reset followed by enough writes to pass the old offset looks like. The
// server reads the file up to the offset for it, so it is done at start and
// before a reconnect, not while streaming.
func (t *Tail) compare(ctx context.Context, now schema.Server, nowGTID mysql.GTIDSet, at Position, deep bool) (sourceChange, string) {
	was := at.Server
	if was == "" {
		was = t.era.Server
	}
	if was != "" && now.Identity != was {
		return sourceMoved, fmt.Sprintf("the source is another server: %s, was %s", now.Identity, was)
	}
	if now.File != "" && at.File != "" {
		end, ok1 := schema.Source{File: now.File, Pos: now.Pos}.Version()
		here, ok2 := schema.Source{File: at.File, Pos: uint64(at.Pos)}.Version()
		if ok1 && ok2 && end < here {
			return sourceRewound, fmt.Sprintf("the source's binlog ends at %s:%d, before the tail's position %s (a binlog reset or a restored server)", now.File, now.Pos, at)
		}
	}
	if nowGTID != nil && at.GTID != "" {
		if ours, err := mysql.ParseGTIDSet(t.srv.flavor, at.GTID); err == nil && !nowGTID.Contain(ours) {
			return sourceRewound, fmt.Sprintf("the source's executed GTID set %s lacks transactions the tail has read (%s): a binlog reset or a restored server", nowGTID, at.GTID)
		}
	}
	if deep && t.srv.flavor == "mariadb" && at.File != "" && at.GTID != "" {
		if kept, _, err := binlogKept(ctx, t.db, at.File); err == nil && kept { // a purged file is the purge handling's
			there := t.gtidAt(ctx, at)
			if !sameGTIDPosition(t.srv.flavor, there, at.GTID) {
				if there == "" {
					there = "none: not an event boundary"
				}
				return sourceRewound, fmt.Sprintf("the source's binlog %s is not the one the tail read: the GTID position at %d is %s there, %s when the tail read it (a binlog reset or a restored server)",
					at.File, at.Pos, there, at.GTID)
			}
		}
	}
	return sourceSame, ""
}

// sameGTIDPosition tells whether two GTID positions name the same
// transactions: the same sequence number in every domain (or uuid).
func sameGTIDPosition(flavor, a, b string) bool {
	as, err1 := mysql.ParseGTIDSet(flavor, a)
	bs, err2 := mysql.ParseGTIDSet(flavor, b)
	return a != "" && err1 == nil && err2 == nil && as.Contain(bs) && bs.Contain(as)
}

// follow takes the source as it is now for a tail at position at: it
// resolves the epoch (advancing it for reset, a reason to start over, or
// for a change compare finds) and returns where the stream must start.
// A moved source is read by GTID from at; a rewound one from the start of
// its binlog.
func (t *Tail) follow(ctx context.Context, at Position, reset string) (Position, error) {
	now, nowGTID, err := t.sourceNow(ctx)
	if err != nil {
		return at, err
	}
	change, why := sourceSame, ""
	if reset == "" {
		change, why = t.compare(ctx, now, nowGTID, at, true)
	}
	switch change {
	case sourceMoved:
		if at.GTID == "" || !t.srv.gtid {
			return at, permanent(fmt.Errorf("tail: %s, and the position %s carries no GTID set to resume by on it: restart with `sluice tail --reset --from <the new server's position or GTID set>` and backfill the window since %s",
				why, at, time.UnixMilli(at.TsMs).UTC().Format(time.RFC3339)))
		}
		t.byGTID = true
		reset = why
	case sourceRewound:
		start, err := earliestPosition(ctx, t.db)
		if err != nil {
			return at, err
		}
		t.log.Warn("tail: the source's binlog went back; reading its new binlog from the start, in a new epoch", "why", why, "from", start.String(),
			"lost_if_the_tail_was_behind", fmt.Sprintf("changes committed after %s and before the reset: backfill that window", time.UnixMilli(at.TsMs).UTC().Format(time.RFC3339)))
		at = start
		reset = why
	}
	era, err := t.st.ResolveEra(ctx, producer.Sighting{Server: now, Reset: reset, Follower: true})
	if err != nil {
		return at, err
	}
	if era.Epoch != t.era.Epoch || era.Server != t.era.Server {
		t.log.Info("tail: version epoch", "epoch", era.Epoch, "server", era.Server, "since", era.Since.Format(time.RFC3339), "reason", era.Reason)
	}
	t.era = era
	at.Epoch, at.Server = era.Epoch, now.Identity
	if at.File != "" && at.GTID == "" {
		at.GTID = t.gtidAt(ctx, at)
	}
	return at, nil
}

// gtidAt is the GTID position at a binlog file and offset, where the server
// can tell it (MariaDB's BINLOG_GTID_POS): it lets a tail started from a
// file position resume by GTID on a new primary.
func (t *Tail) gtidAt(ctx context.Context, p Position) string {
	if t.srv.flavor != "mariadb" {
		return ""
	}
	var g *string
	if err := t.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", p.File, p.Pos).Scan(&g); err != nil || g == nil {
		return ""
	}
	return *g
}

// watchSource is called while streaming: every sourceCheckInterval it
// compares the source with the stream's position and ends the stream when
// the source moved or its binlog went back.
func (t *Tail) watchSource(ctx context.Context, s *streamState) error {
	if time.Since(s.checkedAt) < sourceCheckInterval {
		return nil
	}
	s.checkedAt = time.Now()
	now, nowGTID, err := t.sourceNow(ctx)
	if err != nil {
		return nil // the stream itself reports a lost source
	}
	if change, why := t.compare(ctx, now, nowGTID, s.boundary, false); change != sourceSame {
		return fmt.Errorf("%w: %s", errSourceChanged, why)
	}
	// A reset the cheap checks miss (the new binlog already past the old
	// offset and sequence numbers) leaves the stream on the deleted file:
	// the server has transactions the stream has not seen, and no event
	// comes. The restart's deep check then tells a reset from a stall.
	if time.Since(s.lastEvent) > streamStall && t.sourceAhead(now, nowGTID, s.boundary) {
		return fmt.Errorf("%w: no event for %s while the source's binlog is past %s", errSourceChanged, streamStall, s.boundary)
	}
	return nil
}

// streamStall is how long a stream may receive no event while the source
// has transactions after its position.
const streamStall = 15 * time.Second

// sourceAhead tells whether the source has committed transactions after the
// position at: by GTID where the server has them, else by binlog end.
func (t *Tail) sourceAhead(now schema.Server, nowGTID mysql.GTIDSet, at Position) bool {
	if nowGTID != nil && at.GTID != "" {
		ours, err := mysql.ParseGTIDSet(t.srv.flavor, at.GTID)
		return err == nil && !ours.Contain(nowGTID)
	}
	end, ok1 := schema.Source{File: now.File, Pos: now.Pos}.Version()
	here, ok2 := schema.Source{File: at.File, Pos: uint64(at.Pos)}.Version()
	return ok1 && ok2 && end > here
}
