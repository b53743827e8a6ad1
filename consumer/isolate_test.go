package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/schema"
)

func TestRowRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		row  bool
	}{
		{"data too long", &mysql.MySQLError{Number: 1406}, true},
		{"trigger SIGNAL", fmt.Errorf("write batch: upsert: %w", &mysql.MySQLError{Number: 1644}), true},
		{"MariaDB CHECK", &mysql.MySQLError{Number: 4025}, true},
		{"foreign key", &mysql.MySQLError{Number: 1452}, true},
		{"deadlock", &mysql.MySQLError{Number: 1213}, false},
		{"read-only", &mysql.MySQLError{Number: 1290}, false},
		{"disk full", &mysql.MySQLError{Number: 1021}, false},
		{"lost connection", mysql.ErrInvalidConn, false},
		{"shutdown", context.Canceled, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rowRejected(tc.err); got != tc.row {
				t.Errorf("rowRejected(%v) = %v, want %v", tc.err, got, tc.row)
			}
		})
	}
}

// TestIntegrationRefusedRowsDeadLettered stages rows the target refuses
// inside 10,000-record batches: a trigger SIGNALs on chosen keys, a CHECK
// constraint fails on others. The rest of each batch lands and the group
// commits to the end; each refused record is in the dead-letter topic with
// the database's error, the table, its key, partition and offset; after the
// fix, a re-drive lands them.
func TestIntegrationRefusedRowsDeadLettered(t *testing.T) {
	db, brokers := servers(t)
	w := newWorld(t, db, brokers, "it_refused", 3)
	ctx := w.ctx
	trigger := "CREATE TRIGGER " + w.database + ".refuse BEFORE INSERT ON " + w.database + ".records FOR EACH ROW " +
		"BEGIN IF NEW.device_type LIKE 'refuse-%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by trigger'; END IF; END"
	for _, q := range []string{trigger, "ALTER TABLE " + w.database + ".records ADD CONSTRAINT no_forbidden CHECK (event_type <> 'forbidden')"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const total = 25000
	refused := map[string]bool{} // "device/event"
	recs := make([]*kgo.Record, 0, total)
	for i := range total {
		r := testRow(i, fmt.Sprintf("sensor-%d", i%50))
		switch i {
		case 17, 9999, 14000, 24999:
			r.DeviceType = fmt.Sprintf("refuse-%d", i)
		case 5000, 20000:
			r.EventType = "forbidden"
		}
		if strings.HasPrefix(r.DeviceType, "refuse-") || r.EventType == "forbidden" {
			refused[r.DeviceType+"/"+strconv.Itoa(i)] = true
		}
		ev := schema.Event{Op: schema.OpRead, After: r, Source: schema.Source{Snapshot: "true", File: "mysql-bin.000003", Pos: 100}}
		value, _ := schema.EncodeEvent(&ev)
		key, _ := schema.EncodeKey(ev.Key())
		recs = append(recs, &kgo.Record{Key: key, Value: value})
	}
	if err := w.kcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	c := w.member(200*time.Millisecond, m)
	stop := w.start(c)
	w.caughtUp() // every offset committed: the refused rows block nothing
	if err := stop(); err != nil {
		t.Fatalf("the member stopped on a refused row: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+w.database+".records").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != total-len(refused) {
		t.Errorf("target holds %d rows, want %d (all but the %d refused)", n, total-len(refused), len(refused))
	}
	if st := c.Stats(); st.Dead != int64(len(refused)) {
		t.Errorf("stats count %d dead letters, want %d", st.Dead, len(refused))
	}
	if got := testutil.ToFloat64(m.dlq.WithLabelValues(ReasonDatabase)); got != float64(len(refused)) {
		t.Errorf("sluice_consumer_dlq_records_total{reason=database} = %v, want %d", got, len(refused))
	}
	if testutil.ToFloat64(m.isolations) == 0 {
		t.Error("sluice_consumer_db_isolations_total is 0")
	}

	// The dead letters: one per refused record, each naming its cause.
	dl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(w.topic+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	seen := 0
	for seen < len(refused) {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := dl.PollFetches(pctx)
		timedOut := pctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("%d of %d dead letters in %s.dlq", seen, len(refused), w.topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			ev, err := schema.DecodeEvent(r.Value)
			if err != nil {
				t.Fatalf("dead letter %d: %v", r.Offset, err)
			}
			id := strconv.Itoa(int(ev.After.ID) - 1)
			if !refused[ev.After.DeviceType+"/"+id] {
				t.Errorf("dead letter of a row the target takes: %s", r.Value)
			}
			reason, _ := Header(r, schema.DLQHeaderReason)
			msg, _ := Header(r, schema.DLQHeaderError)
			part, _ := Header(r, schema.DLQHeaderPartition)
			off, _ := Header(r, schema.DLQHeaderOffset)
			want := []string{"target " + w.database + ".records refused key (" + ev.After.DeviceType, "record " + w.topic + "/" + part + "@" + off}
			if ev.After.EventType == "forbidden" {
				want = append(want, "Error 4025", "no_forbidden")
			} else {
				want = append(want, "Error 1644", "refused by trigger")
			}
			for _, s := range want {
				if !strings.Contains(msg, s) {
					t.Errorf("dead letter's error %q lacks %q", msg, s)
				}
			}
			if reason != ReasonDatabase || part == "" || off == "" {
				t.Errorf("dead letter headers: reason %q partition %q offset %q", reason, part, off)
			}
		})
	}

	// The fix, then the re-drive: the refused rows land.
	for _, q := range []string{"DROP TRIGGER " + w.database + ".refuse", "ALTER TABLE " + w.database + ".records DROP CONSTRAINT no_forbidden"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	moved, err := Redrive(ctx, RedriveConfig{Brokers: []string{brokers}, DLQTopic: w.topic + ".dlq", Group: w.group + "-redrive", DialTimeout: 10 * time.Second,
		Resend: newTestDeadLetters(t, brokers, w.topic+".dlq")})
	if err != nil || moved.Redriven != len(refused) {
		t.Fatalf("Redrive = %+v, %v; want %d re-driven", moved, err, len(refused))
	}
	stop = w.start(w.member(50*time.Millisecond, nil))
	w.caughtUp()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+w.database+".records").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != total {
		t.Errorf("after the re-drive the target holds %d rows, want %d", n, total)
	}
}
