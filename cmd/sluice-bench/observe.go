package main

// The tail bench's observer: which source rows have reached the target, and
// when. It finds target rows by source_id (the source row's id, which the
// bench's writers learn at their commits), never by the target's own
// auto-increment id: target ids are taken when a consumer member inserts,
// not when it commits, so with two members a batch committed after the
// other member's later batch carries lower ids than rows already seen, and
// an observer that polled `id > last` never saw it (issue 22: `only 58060 of
// 60000 rows` while the target held them all).

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// observerChunk bounds the ids one poll query names.
const observerChunk = 1000

// arrival is when the observer first saw a row in the target, and the
// row's loaded_at (the consumer's clock when it wrote the batch, before
// its commit): the target commit lies between the two.
type arrival struct {
	seen, loaded time.Time
}

// observer keeps the source ids the writers committed and those seen in the
// target. Writers call committed; one goroutine calls poll; the rest read
// after the writers and the poller have stopped.
type observer struct {
	db    *sql.DB
	table string // the target, quoted: db.records

	mu      sync.Mutex
	commits map[uint64]time.Time // source id → return of its source COMMIT
	pending map[uint64]bool      // committed, not yet seen
	maxID   uint64               // highest committed source id
	seen    map[uint64]arrival
	maxPoll time.Duration // the longest poll round: how late a sighting can be
}

func newObserver(db *sql.DB, table string) *observer {
	return &observer{db: db, table: table, commits: map[uint64]time.Time{}, pending: map[uint64]bool{}, seen: map[uint64]arrival{}}
}

// committed records that source ids first..first+n-1 committed at at.
func (o *observer) committed(first uint64, n int, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id := first; id < first+uint64(n); id++ {
		o.commits[id] = at
		if _, ok := o.seen[id]; !ok {
			o.pending[id] = true
		}
		o.maxID = max(o.maxID, id)
	}
}

// poll reads the target once: the committed rows not seen yet, by their
// source ids, and any row above the highest committed id (a row can reach
// the target before its writer has recorded its commit).
func (o *observer) poll(ctx context.Context) error {
	start := time.Now()
	o.mu.Lock()
	ids := make([]uint64, 0, len(o.pending))
	for id := range o.pending {
		ids = append(ids, id)
	}
	above := o.maxID
	o.mu.Unlock()
	slices.Sort(ids)
	// One query in the usual case (fewer than observerChunk rows in
	// flight): both conditions are ranges of the source_id index.
	for {
		n := min(len(ids), observerChunk)
		q := "SELECT source_id, loaded_at FROM " + o.table + " WHERE "
		args := make([]any, 0, n+1)
		if n > 0 {
			q += "source_id IN (?" + strings.Repeat(",?", n-1) + ")"
			for _, id := range ids[:n] {
				args = append(args, id)
			}
		}
		if last := n == len(ids); last {
			if n > 0 {
				q += " OR "
			}
			q += "source_id > ?"
			args = append(args, above)
		}
		if err := o.read(ctx, q, args...); err != nil {
			return err
		}
		if ids = ids[n:]; len(ids) == 0 {
			break
		}
	}
	o.mu.Lock()
	o.maxPoll = max(o.maxPoll, time.Since(start))
	o.mu.Unlock()
	return nil
}

func (o *observer) read(ctx context.Context, q string, args ...any) error {
	rows, err := o.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("observe %s: %w", o.table, err)
	}
	defer rows.Close()
	// The rows returned were committed before the query began; now is when
	// they are known to be there.
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for rows.Next() {
		var id uint64
		var loaded sql.NullTime
		if err := rows.Scan(&id, &loaded); err != nil {
			return fmt.Errorf("observe %s: %w", o.table, err)
		}
		if _, dup := o.seen[id]; !dup {
			o.seen[id] = arrival{seen: now, loaded: loaded.Time}
			delete(o.pending, id)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("observe %s: %w", o.table, err)
	}
	return nil
}

// counts returns how many committed rows there are and how many are not
// seen yet.
func (o *observer) counts() (committed, missing int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.commits), len(o.pending)
}

// missingErr names the committed rows not seen, as source id ranges (the
// first few), or returns nil when every committed row was seen.
func (o *observer) missingErr(within time.Duration) error {
	o.mu.Lock()
	ids := make([]uint64, 0, len(o.pending))
	for id := range o.pending {
		ids = append(ids, id)
	}
	total := len(o.commits)
	o.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	var ranges []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if len(ranges) == 10 {
			ranges = append(ranges, "…")
			break
		}
		if i == j {
			ranges = append(ranges, fmt.Sprint(ids[i]))
		} else {
			ranges = append(ranges, fmt.Sprintf("%d-%d", ids[i], ids[j]))
		}
		i = j + 1
	}
	return fmt.Errorf("%d of %d committed source rows not seen in %s within %v of the last insert: source ids %s",
		len(ids), total, o.table, within, strings.Join(ranges, ", "))
}

// latencies returns, sorted, each seen row's delay in ms from the return
// of its source COMMIT to its sighting in the target (an upper bound of the
// target commit), and to its loaded_at (a lower bound).
func (o *observer) latencies() (seen, loaded []float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, at := range o.commits {
		a, ok := o.seen[id]
		if !ok {
			continue
		}
		seen = append(seen, float64(a.seen.Sub(at).Microseconds())/1000)
		if !a.loaded.IsZero() {
			loaded = append(loaded, float64(a.loaded.Sub(at).Microseconds())/1000)
		}
	}
	slices.Sort(seen)
	slices.Sort(loaded)
	return seen, loaded
}
