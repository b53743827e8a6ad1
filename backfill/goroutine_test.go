package backfill

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// lateSink acknowledges every chunk after delay, from a goroutine of its
// own as kgo does, with the chunk's next scripted error, then nil. Chunks
// ending above silentAbove (when set) are never acknowledged: a broker that
// died. onSend runs on every Send with the chunk's highest id.
type lateSink struct {
	delay       time.Duration
	silentAbove uint64
	onSend      func(top uint64)

	mu   sync.Mutex
	errs map[uint64][]error // by the chunk's highest id
	acks sync.WaitGroup     // acknowledgements not yet delivered
}

func (s *lateSink) Send(_ context.Context, changes []schema.Change, acked func(error)) error {
	top := changeID(changes[len(changes)-1])
	if s.onSend != nil {
		s.onSend(top)
	}
	if s.silentAbove > 0 && top > s.silentAbove {
		return nil
	}
	s.mu.Lock()
	var err error
	if errs := s.errs[top]; len(errs) > 0 {
		err, s.errs[top] = errs[0], errs[1:]
	}
	s.mu.Unlock()
	s.acks.Add(1)
	time.AfterFunc(s.delay, func() {
		defer s.acks.Done()
		acked(err)
	})
	return nil
}

const backfillPkg = "github.com/sluice-dev/sluice/backfill."

// backfillGoroutines returns the stacks of the goroutines, other than the
// caller's, that run the backfill's own code (not its tests') or were
// started by it.
func backfillGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var ours []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the caller
			continue
		}
		lines := strings.Split(g, "\n")
		for j := 1; j+1 < len(lines); j++ {
			fn := strings.TrimPrefix(lines[j], "created by ")
			file, _, _ := strings.Cut(strings.TrimSpace(lines[j+1]), ":")
			if strings.HasPrefix(fn, backfillPkg) && !strings.HasSuffix(file, "_test.go") {
				ours = append(ours, g)
				break
			}
		}
	}
	return ours
}

// checkAllJoined fails t when a goroutine the backfill started is still
// running shortly after Run returned. The short grace covers a goroutine
// that has signalled its owner and is only unwinding; the leaks it looks
// for last as long as the sink takes to answer (much longer).
func checkAllJoined(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(100 * time.Millisecond)
	for {
		left := backfillGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("Run returned with %d goroutine(s) it started still running:\n\n%s", len(left), strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRunJoinsItsGoroutines checks that Run, whichever way it ends, has
// waited for every goroutine it started (planner, readers, delivery
// retries, stall watchdog, checkpoint writer) before it returns, even while
// the sink still holds chunks it will acknowledge much later.
func TestRunJoinsItsGoroutines(t *testing.T) {
	tests := []struct {
		name    string
		sink    func(cancel context.CancelFunc) *lateSink
		cfg     func(*Config)
		wantErr string // "" for success
	}{
		{name: "success with a delivery retried",
			sink: func(context.CancelFunc) *lateSink {
				return &lateSink{delay: 10 * time.Millisecond, errs: map[uint64][]error{20: {errBroker}}}
			}},
		{name: "a chunk fails while another waits out its backoff",
			sink: func(context.CancelFunc) *lateSink {
				return &lateSink{delay: 30 * time.Millisecond, errs: map[uint64][]error{
					20: {errBroker},                // retried after 0.5-1 s
					50: {context.DeadlineExceeded}, // not retried: fails the run while 20 waits
				}}
			},
			cfg: func(c *Config) {
				c.ChunkAttempts, c.ChunkBackoff = 2, time.Second
				c.Readers = 5
			},
			wantErr: "chunk id (40,50] failed after"},
		{name: "interrupted with chunks at the sink",
			sink: func(cancel context.CancelFunc) *lateSink {
				return &lateSink{delay: 500 * time.Millisecond, onSend: func(top uint64) {
					if top == 30 {
						cancel()
					}
				}}
			},
			wantErr: "interrupted with"},
		{name: "the sink stalls",
			sink:    func(context.CancelFunc) *lateSink { return &lateSink{delay: time.Millisecond, silentAbove: 20} },
			cfg:     func(c *Config) { c.StallTimeout = 200 * time.Millisecond },
			wantErr: "Kafka acknowledged nothing for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if left := backfillGoroutines(); len(left) > 0 {
				t.Fatalf("%d backfill goroutine(s) running before Run:\n\n%s", len(left), strings.Join(left, "\n\n"))
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			sink := tt.sink(cancel)
			cfg := testConfig()
			cfg.Readers = 2
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			src := newFakeSource(idRange(1, 100)...)
			bf, _ := newTestBackfill(t, cfg, src, sink)
			bf.SetCheckpoints(&memCheckpoints{t: t})
			err := bf.Run(ctx)
			checkAllJoined(t)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Run = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Run = %v, want it to say %q", err, tt.wantErr)
			}
			if tt.wantErr == "interrupted with" && !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
			sink.acks.Wait() // the late acknowledgements, before the next case looks
			checkAllJoined(t)
		})
	}
}
