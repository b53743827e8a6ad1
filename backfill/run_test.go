package backfill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/schema"
)

// scriptedSink acknowledges each send of a chunk (named by its highest id)
// with the next scripted error, then with nil. It records every id it
// acknowledged successfully, and how often each chunk was sent.
type scriptedSink struct {
	mu      sync.Mutex
	ackErrs map[uint64][]error // by the chunk's highest id
	sends   map[uint64]int
	acked   map[uint64]int // id -> successful acknowledgements
	onSend  func()
}

func newScriptedSink() *scriptedSink {
	return &scriptedSink{ackErrs: map[uint64][]error{}, sends: map[uint64]int{}, acked: map[uint64]int{}}
}

func (s *scriptedSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	if s.onSend != nil {
		s.onSend()
	}
	if len(changes) == 0 {
		acked(nil)
		return nil
	}
	ids := make([]uint64, len(changes))
	for i, c := range changes {
		ids[i] = changeID(c)
	}
	s.mu.Lock()
	top := ids[len(ids)-1]
	n := s.sends[top]
	s.sends[top]++
	var err error
	if errs := s.ackErrs[top]; n < len(errs) {
		err = errs[n]
	}
	s.mu.Unlock()
	go func() { // acknowledgements come from another goroutine, as kgo's do
		if err == nil {
			s.mu.Lock()
			for _, id := range ids {
				s.acked[id]++
			}
			s.mu.Unlock()
		}
		acked(err)
	}()
	return nil
}

func (s *scriptedSink) ackedIDs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []uint64
	for id := range s.acked {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// memCheckpoints keeps progress in memory. On every Save it checks that the
// saved ranges hold only ids the sink has acknowledged: progress written
// before the acknowledgement would lose rows on a resume.
type memCheckpoints struct {
	t        *testing.T
	mu       sync.Mutex
	saved    []Range
	saves    int
	complete bool
	sink     *scriptedSink
	src      *fakeSource
}

func (m *memCheckpoints) Load(context.Context) ([]Range, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.saved), nil
}

func (m *memCheckpoints) Save(_ context.Context, done []Range) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sink != nil {
		acked := m.sink.ackedIDs()
		for _, r := range done {
			for _, id := range m.src.ids {
				if id >= r.Lo && id <= r.Hi && !slices.Contains(acked, id) && !inRanges(m.saved, id) {
					m.t.Errorf("progress saved %v holds id %d before Kafka acknowledged it", r, id)
				}
			}
		}
	}
	m.saved = slices.Clone(done)
	m.saves++
	return nil
}

func (m *memCheckpoints) Complete(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saved, m.complete = nil, true
	return nil
}

func inRanges(rs []Range, id uint64) bool {
	for _, r := range rs {
		if id >= r.Lo && id <= r.Hi {
			return true
		}
	}
	return false
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Resolved = testTable()
	cfg.Start = time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	cfg.End = cfg.Start.AddDate(0, 0, 1)
	cfg.ChunkSize, cfg.Readers = 10, 3
	cfg.ChunkBackoff = time.Millisecond
	cfg.CheckpointInterval = time.Millisecond
	return cfg
}

func newTestBackfill(t *testing.T, cfg Config, src *fakeSource, sink ChangeSink) (*Backfill, *Metrics) {
	t.Helper()
	db := src.db()
	t.Cleanup(func() { db.Close() })
	m := NewMetrics(nil)
	bf, err := NewTable(cfg, db, sink, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return bf, m
}

var errBroker = errors.New("broker: record timed out")

func TestRunRetriesChunks(t *testing.T) {
	lost := &mysql.MySQLError{Number: 2013, Message: "Lost connection to server during query"}
	deadlock := &mysql.MySQLError{Number: 1213, Message: "Deadlock found"}
	noTable := &mysql.MySQLError{Number: 1146, Message: "Table 'source_db.raw_records' doesn't exist"}
	tests := []struct {
		name        string
		attempts    int
		ackErrs     []error // of the chunk (10,20]
		readErrs    []error // of the chunk (10,20]
		wantErr     []string
		wantAttempt int // of the ChunkError
		wantSends   int // of the chunk (10,20]
		wantReads   int // of the chunk (10,20]
		retries     float64
		failures    float64
	}{
		{name: "delivery fails twice, then succeeds", attempts: 5, ackErrs: []error{errBroker, errBroker},
			wantSends: 3, wantReads: 3, retries: 2},
		{name: "read fails with lost connection and deadlock, then succeeds", attempts: 5, readErrs: []error{lost, deadlock},
			wantSends: 1, wantReads: 3, retries: 2},
		{name: "read fails while the source fails over and on a broken connection, then succeeds", attempts: 5,
			readErrs:  []error{&mysql.MySQLError{Number: 1290, Message: "read-only"}, fmt.Errorf("query: %w", mysql.ErrInvalidConn)},
			wantSends: 1, wantReads: 3, retries: 2},
		{name: "read fails while the source restarts (a refused dial), then succeeds", attempts: 5,
			readErrs:  []error{fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})},
			wantSends: 1, wantReads: 2, retries: 1},
		{name: "read and delivery failures share the attempts", attempts: 3, readErrs: []error{lost}, ackErrs: []error{errBroker},
			wantSends: 2, wantReads: 3, retries: 2},
		{name: "delivery keeps failing", attempts: 3, ackErrs: []error{errBroker, errBroker, errBroker},
			wantErr: []string{"chunk id (10,20] failed after 3 attempt(s)", "delivery", errBroker.Error()}, wantAttempt: 3,
			wantSends: 3, wantReads: 3, retries: 2, failures: 1},
		{name: "read keeps failing", attempts: 2, readErrs: []error{lost, lost},
			wantErr: []string{"chunk id (10,20] failed after 2 attempt(s)", "Lost connection"}, wantAttempt: 2,
			wantReads: 2, retries: 1, failures: 1},
		{name: "a permanent read error is not retried", attempts: 5, readErrs: []error{noTable},
			wantErr: []string{"chunk id (10,20] failed after 1 attempt(s)", "doesn't exist"}, wantAttempt: 1,
			wantReads: 1, failures: 1},
		{name: "one attempt means no retry", attempts: 1, ackErrs: []error{errBroker},
			wantErr: []string{"chunk id (10,20] failed after 1 attempt(s)"}, wantAttempt: 1,
			wantSends: 1, wantReads: 1, failures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(idRange(1, 50)...)
			src.readErrs[20] = tt.readErrs
			sink := newScriptedSink()
			sink.ackErrs[20] = tt.ackErrs
			cfg := testConfig()
			cfg.ChunkAttempts = tt.attempts
			bf, m := newTestBackfill(t, cfg, src, sink)
			err := bf.Run(t.Context())
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
				if got := sink.ackedIDs(); !slices.Equal(got, idRange(1, 50)) {
					t.Errorf("acknowledged ids %v, want 1..50", got)
				}
				if p := bf.Progress(); p.IDsDone != p.IDs || p.RowsAcked != 50 {
					t.Errorf("progress %+v, want the whole range done and 50 rows acknowledged", p)
				}
			} else {
				var ce *ChunkError
				if !errors.As(err, &ce) {
					t.Fatalf("Run = %v, want a *ChunkError", err)
				}
				if ce.Chunk != (Chunk{Lo: 10, Hi: 20}) || ce.Attempts != tt.wantAttempt {
					t.Errorf("ChunkError chunk %v attempts %d, want (10,20] after %d", ce.Chunk, ce.Attempts, tt.wantAttempt)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Run = %q, want it to say %q", err, w)
					}
				}
			}
			if got := sink.sends[20]; got != tt.wantSends {
				t.Errorf("chunk (10,20] sent %d times, want %d", got, tt.wantSends)
			}
			if got := src.reads[20]; got != tt.wantReads {
				t.Errorf("chunk (10,20] read %d times, want %d", got, tt.wantReads)
			}
			if got := testutil.ToFloat64(m.chunkRetries); got != tt.retries {
				t.Errorf("retries = %v, want %v", got, tt.retries)
			}
			if got := testutil.ToFloat64(m.chunkFailures); got != tt.failures {
				t.Errorf("failures = %v, want %v", got, tt.failures)
			}
		})
	}
}

// cancelSink cancels the run when it is sent the chunk ending at id top, and
// fails that chunk's delivery with the cancellation, as kgo does for a
// record whose context is cancelled.
type cancelSink struct {
	top    uint64
	cancel context.CancelFunc
	mu     sync.Mutex
	sends  int
}

func (s *cancelSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	if len(changes) > 0 && changeID(changes[len(changes)-1]) == s.top {
		s.mu.Lock()
		s.sends++
		s.mu.Unlock()
		s.cancel()
		go acked(context.Canceled)
		return nil
	}
	go acked(nil)
	return nil
}

func TestRunDoesNotRetryCancellation(t *testing.T) {
	src := newFakeSource(idRange(1, 50)...)
	ctx, cancel := context.WithCancel(t.Context())
	sink := &cancelSink{top: 20, cancel: cancel}
	bf, m := newTestBackfill(t, testConfig(), src, sink)
	err := bf.Run(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("Run = %v, want it interrupted by the cancellation", err)
	}
	if got := testutil.ToFloat64(m.chunkRetries); got != 0 {
		t.Errorf("retries = %v after a cancellation, want 0", got)
	}
	if got := testutil.ToFloat64(m.chunkFailures); got != 0 {
		t.Errorf("failures = %v after a cancellation, want 0 (shutdown is not a chunk failure)", got)
	}
	if sink.sends != 1 {
		t.Errorf("chunk (10,20] sent %d times, want 1", sink.sends)
	}
}

func TestRunResumes(t *testing.T) {
	tests := []struct {
		name        string
		ids         []uint64
		saved       []Range
		restart     bool
		wantSent    []uint64
		wantResumed uint64
	}{
		{name: "nothing saved", ids: idRange(1, 100), wantSent: idRange(1, 100)},
		{name: "first half done", ids: idRange(1, 100), saved: []Range{{1, 50}},
			wantSent: idRange(51, 100), wantResumed: 50},
		{name: "holes in the middle", ids: idRange(1, 100), saved: []Range{{1, 20}, {31, 75}, {91, 95}},
			wantSent: slices.Concat(idRange(21, 30), idRange(76, 90), idRange(96, 100)), wantResumed: 20 + 45 + 5},
		{name: "everything done", ids: idRange(1, 100), saved: []Range{{1, 100}}, wantResumed: 100},
		{name: "saved beyond today's range", ids: idRange(10, 60), saved: []Range{{1, 30}, {55, 200}},
			wantSent: idRange(31, 54), wantResumed: 21 + 6},
		{name: "sparse ids, done range over a gap", ids: []uint64{1, 2, 3, 500, 501, 9000, 9001},
			saved: []Range{{400, 600}}, wantSent: []uint64{1, 2, 3, 9000, 9001}, wantResumed: 101}, // 400..499 is a gap
		{name: "restart ignores saved progress", ids: idRange(1, 100), saved: []Range{{1, 50}}, restart: true,
			wantSent: idRange(1, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(tt.ids...)
			sink := newScriptedSink()
			cp := &memCheckpoints{t: t, saved: tt.saved, sink: sink, src: src}
			cfg := testConfig()
			cfg.Restart = tt.restart
			bf, m := newTestBackfill(t, cfg, src, sink)
			bf.SetCheckpoints(cp)
			if err := bf.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := sink.ackedIDs(); !slices.Equal(got, tt.wantSent) {
				t.Errorf("sent ids %v, want %v", got, tt.wantSent)
			}
			p := bf.Progress()
			if p.IDsDone != p.IDs || p.IDsResumed != tt.wantResumed {
				t.Errorf("progress %+v: want every id done, %d of them resumed", p, tt.wantResumed)
			}
			if got := testutil.ToFloat64(m.resumedIDs); got != float64(tt.wantResumed) {
				t.Errorf("resumed ids metric = %v, want %d", got, tt.wantResumed)
			}
			// The table's series are labelled with its source db.table.
			if got := testutil.ToFloat64(m.progress.WithLabelValues("source_db.raw_records")); got != 1 {
				t.Errorf("progress ratio of source_db.raw_records = %v, want 1", got)
			}
			// The last save covers every id of the window.
			for _, id := range tt.ids {
				if len(tt.wantSent) > 0 && !inRanges(cp.saved, id) {
					t.Errorf("id %d is not in the saved progress %v", id, cp.saved)
					break
				}
			}
			if len(cp.saved) > 3 {
				t.Errorf("saved progress %v is not coalesced", cp.saved)
			}
			if cp.complete {
				t.Error("Run completed the checkpoints; only the caller may, once the whole job succeeded")
			}
			if err := bf.Complete(t.Context()); err != nil || !cp.complete {
				t.Errorf("Complete = %v, complete %v", err, cp.complete)
			}
		})
	}
}

// A failed run saves what was acknowledged; the next run sends only the rest.
func TestRunResumesAfterFailure(t *testing.T) {
	src := newFakeSource(idRange(1, 200)...)
	sink := newScriptedSink()
	sink.ackErrs[150] = []error{errBroker}
	cp := &memCheckpoints{t: t, sink: sink, src: src}
	cfg := testConfig()
	cfg.ChunkAttempts, cfg.Readers = 1, 1
	bf, _ := newTestBackfill(t, cfg, src, sink)
	bf.SetCheckpoints(cp)
	if err := bf.Run(t.Context()); err == nil {
		t.Fatal("Run succeeded; want the chunk (140,150] to fail it")
	}
	first := sink.ackedIDs()
	if len(first) == 0 || len(first) >= 200 {
		t.Fatalf("first run acknowledged %d ids; want some, not all", len(first))
	}
	for _, id := range first {
		if !inRanges(cp.saved, id) {
			t.Fatalf("acknowledged id %d missing from the progress saved at the end: %v", id, cp.saved)
		}
	}

	sink2 := newScriptedSink()
	cp.sink = sink2
	bf2, _ := newTestBackfill(t, cfg, src, sink2)
	bf2.SetCheckpoints(cp)
	if err := bf2.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := sink2.ackedIDs()
	if got := slices.Sorted(slices.Values(slices.Concat(first, second))); !slices.Equal(got, idRange(1, 200)) {
		t.Errorf("the two runs sent %d ids between them (%d + %d), want 1..200 exactly once", len(got), len(first), len(second))
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	bf := &Backfill{cfg: Config{ChunkBackoff: 100 * time.Millisecond}}
	for n := 1; n <= 4; n++ {
		full := 100 * time.Millisecond << (n - 1)
		for range 50 {
			if d := bf.backoff(n); d < full/2 || d > full {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
			}
		}
	}
}

// silentSink acknowledges the chunks ending at or below upTo, and never
// the others: a broker that died after they were sent.
type silentSink struct{ upTo uint64 }

func (s *silentSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	if len(changes) > 0 && changeID(changes[len(changes)-1]) <= s.upTo {
		go acked(nil)
	}
	return nil
}

// failingSink fails every delivery as a retriable error, after a while: a
// client failing records it never sent.
type failingSink struct{ after time.Duration }

func (s *failingSink) Send(_ context.Context, _ []schema.Change, acked func(error)) error {
	time.AfterFunc(s.after, func() { acked(errors.New("record timed out")) })
	return nil
}

func TestRunFailsWhenTheSinkStalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		sink ChangeSink
	}{
		{"acknowledgements stop", &silentSink{upTo: 20}},
		{"every delivery fails and is retried", &failingSink{after: 20 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.StallTimeout, cfg.ChunkAttempts, cfg.ChunkBackoff = 300*time.Millisecond, 1000, time.Millisecond
			bf, _ := newTestBackfill(t, cfg, newFakeSource(idRange(1, 50)...), tc.sink)
			t0 := time.Now()
			err := bf.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), "Kafka acknowledged nothing for") {
				t.Fatalf("Run = %v, want the stall named", err)
			}
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("Run returned %s after the stall began", d)
			}
		})
	}
}
