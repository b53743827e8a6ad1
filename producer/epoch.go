package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// Versions and epochs. A row's version is made of a binlog position
// (schema.Source.Version), and binlog positions only grow while one server
// keeps one binlog. A new primary, a binlog reset (RESET MASTER, a rebuilt
// server), a restored backup or a move between MySQL and MariaDB start a
// numbering that can be behind what the target already holds, and the
// consumer would then drop every later change as older. So each version also
// carries an epoch, kept here in the state topic, which advances whenever
// the numbering may have restarted:
//
//   - the source is another server than the epoch's (its identity,
//     schema.Server.Identity, changed);
//   - the source's binlog now ends before a position already seen in the
//     epoch (the era record's mark, or a tail's committed position);
//   - the tail was told to start over (--reset, --recover-purged).
//
// A later epoch is newer than everything before it. Advancing it is always
// safe: the tail streams every change after its start, so the last change
// of each row wins whatever it overwrote; not advancing it when the
// numbering restarted is what loses changes.

// EraKey is the state key of the source's current epoch.
const EraKey = "source/era"

// tailKeys is the prefix of the tails' committed positions (tail.PositionKey):
// every position a tail commits is a mark of its epoch.
const tailKeys = "tail/"

// Era is the source's current epoch and the highest binlog position it has
// been seen at in that epoch.
type Era struct {
	Epoch  uint16    `json:"epoch"`
	Server string    `json:"server"`
	File   string    `json:"file,omitempty"`
	Pos    uint64    `json:"pos,omitempty"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// mark is what Era and a tail's stored position have in common.
type mark struct {
	Epoch  uint16 `json:"epoch"`
	Server string `json:"server"`
	File   string `json:"file"`
	Pos    uint64 `json:"pos"`
}

func (m mark) version() (uint64, bool) {
	return schema.Source{File: m.File, Pos: m.Pos}.Version()
}

// ErrStaleSource is a backfill source that is another server than the one
// the epoch follows and is read-only: most likely a replica, or the old
// primary after a failover. Its positions cannot be ordered with the ones
// the tail streams, and taking a new epoch for it would let its reads win
// over newer changes.
var ErrStaleSource = errors.New("the source is read-only and is not the server the versions follow")

// Sighting is what a process sees of the source when it is about to make
// versions from its positions.
type Sighting struct {
	Server schema.Server
	// Reset forces a new epoch, with this reason (a tail told to start
	// over).
	Reset string
	// Follower marks a process that may take a new epoch for a read-only
	// server (the tail may follow a replica; a backfill may not read one
	// the versions do not follow).
	Follower bool
}

// ResolveEra returns the epoch a process must use for positions of the
// sighted server, advancing it when the numbering may have restarted, and
// records it (with the sighted position as its new mark when that is
// higher).
func (s *State) ResolveEra(ctx context.Context, sight Sighting) (Era, error) {
	srv := sight.Server
	now := mark{Server: srv.Identity, File: srv.File, Pos: srv.Pos}
	var cur Era
	var found bool
	marks, err := s.GetPrefix(ctx, tailKeys)
	if err != nil {
		return Era{}, err
	}
	if v, ok, err := s.Get(ctx, EraKey); err != nil {
		return Era{}, err
	} else if ok {
		if err := json.Unmarshal(v, &cur); err != nil {
			return Era{}, fmt.Errorf("kafka: state %s key %s: %q: %w", s.topic, EraKey, v, err)
		}
		found = true
	} else {
		// The first sighting: epoch 0, which is also the epoch of versions
		// made before epochs existed (and of their tails' positions).
		cur = Era{Server: srv.Identity, Reason: "first sighting of the source"}
	}
	// The highest position seen in the current epoch.
	high := mark{Epoch: cur.Epoch, Server: cur.Server, File: cur.File, Pos: cur.Pos}
	for _, v := range marks {
		var m mark
		if json.Unmarshal(v, &m) != nil || m.File == "" || m.Epoch != cur.Epoch || (m.Server != "" && m.Server != cur.Server) {
			continue
		}
		if newer(m, high) {
			high = m
		}
	}

	next := cur
	switch {
	case sight.Reset != "":
		next.Reason = sight.Reset
	case cur.Server != srv.Identity && cur.Server != "":
		if srv.ReadOnly && !sight.Follower {
			return Era{}, fmt.Errorf("%w: the source is %s (read_only=ON), the versions follow %s since %s: point the backfill at the server the tail follows (the primary), or at a replica only when the tail follows that replica",
				ErrStaleSource, srv.Identity, cur.Server, cur.Since.Format(time.RFC3339))
		}
		next.Reason = fmt.Sprintf("the source is another server: %s, was %s", srv.Identity, cur.Server)
	case srv.File != "" && newer(high, now):
		next.Reason = fmt.Sprintf("the source's binlog ends at %s:%d, before %s:%d seen in epoch %d (a binlog reset or a restored server)",
			srv.File, srv.Pos, high.File, high.Pos, cur.Epoch)
	default:
		if found && (srv.File == "" || !newer(now, mark{File: cur.File, Pos: cur.Pos})) {
			return cur, nil
		}
		if !found {
			cur.Since = time.Now().UTC()
		}
		if srv.File != "" {
			cur.File, cur.Pos = srv.File, srv.Pos
		}
		return cur, s.putEra(ctx, cur)
	}
	if cur.Epoch >= schema.MaxEpoch {
		return Era{}, fmt.Errorf("source: epoch %d is the last a version can hold (%s); the target's versions must be cleared to go on", cur.Epoch, next.Reason)
	}
	next.Epoch = cur.Epoch + 1
	next.Server, next.File, next.Pos, next.Since = srv.Identity, srv.File, srv.Pos, time.Now().UTC()
	if err := s.putEra(ctx, next); err != nil {
		return Era{}, err
	}
	return next, nil
}

func (s *State) putEra(ctx context.Context, e Era) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.Put(ctx, EraKey, v)
}

// newer tells whether a is a later binlog position than b; a position that
// makes no version is never newer.
func newer(a, b mark) bool {
	av, ok := a.version()
	if !ok {
		return false
	}
	bv, ok := b.version()
	return !ok || av > bv
}
