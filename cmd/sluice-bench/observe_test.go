package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestObserverOutOfOrderCommits runs the tail bench's observer against the
// test server with two transactions that commit in the opposite order of
// their target ids, as two consumer members do: the later-committed one
// holds the lower ids. Every committed row must be seen (an observer that
// polled `id > last` never saw it: issue 22), and a row that really is
// missing must be named by its source id.
func TestObserverOutOfOrderCommits(t *testing.T) {
	db, database := layoutTestDB(t)
	ctx := context.Background()
	table := database + ".records"
	for _, q := range []string{
		"CREATE DATABASE " + database,
		"CREATE TABLE " + table + ` (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		  source_id BIGINT UNSIGNED NULL, loaded_at DATETIME(6) NULL, KEY (source_id))`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	insert := func(from, to int) string {
		var vals []string
		for id := from; id <= to; id++ {
			vals = append(vals, fmt.Sprintf("(%d, UTC_TIMESTAMP(6))", id))
		}
		return "INSERT INTO " + table + " (source_id, loaded_at) VALUES " + strings.Join(vals, ",")
	}

	// Member A inserts source rows 1-5 first (target ids 1-5), member B
	// then 6-10 (target ids 6-10); B commits first.
	a, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback()
	b, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Rollback()
	if _, err := a.ExecContext(ctx, insert(1, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ExecContext(ctx, insert(6, 10)); err != nil {
		t.Fatal(err)
	}

	obs := newObserver(db, table)
	obs.committed(1, 10, time.Now())
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := obs.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, missing := obs.counts(); missing != 5 {
		t.Fatalf("after member B's commit: %d rows not seen, want 5 (source ids 1-5)", missing)
	}
	if err := a.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := obs.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if err := obs.missingErr(time.Minute); err != nil {
		t.Fatalf("after both commits: %v", err)
	}
	seen, loaded := obs.latencies()
	if len(seen) != 10 || len(loaded) != 10 {
		t.Fatalf("latencies of %d rows seen and %d loaded_at, want 10 and 10", len(seen), len(loaded))
	}

	// Source rows 11-14 commit; only 12 reaches the target.
	obs.committed(11, 4, time.Now())
	if _, err := db.ExecContext(ctx, insert(12, 12)); err != nil {
		t.Fatal(err)
	}
	if err := obs.poll(ctx); err != nil {
		t.Fatal(err)
	}
	err = obs.missingErr(time.Minute)
	if err == nil {
		t.Fatal("source ids 11, 13 and 14 are not in the target, and the observer reported none missing")
	}
	if want := "3 of 14 committed source rows not seen in " + table + " within 1m0s of the last insert: source ids 11, 13-14"; err.Error() != want {
		t.Fatalf("missing rows: got\n%v\nwant\n%s", err, want)
	}
}
