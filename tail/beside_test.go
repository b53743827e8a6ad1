package tail

import (
	"context"
	"errors"
	"testing"
)

func TestRunBeside(t *testing.T) {
	errRun, errSide := errors.New("run failed"), errors.New("gap backfill failed")
	untilDone := func(ctx context.Context) error { <-ctx.Done(); return nil }
	tests := []struct {
		name      string
		run, side func(context.Context) error
		cancel    bool // the side cancels the caller's ctx when it ends (a shutdown then)
		shutdown  bool // the caller's ctx is cancelled from the start
		want      error
	}{
		{name: "the side fails: the run stops, with the side's error", run: untilDone,
			side: func(context.Context) error { return errSide }, want: errSide},
		{name: "the run fails: the side is stopped", run: func(context.Context) error { return errRun },
			side: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, want: errRun},
		{name: "the side succeeds: the run goes on until shutdown", run: untilDone,
			side: func(context.Context) error { return nil }, cancel: true},
		{name: "shutdown: the side's cancellation is no error", run: untilDone,
			side: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, shutdown: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.shutdown {
				cancel()
			}
			sideDone := false
			side := func(ctx context.Context) error {
				err := tc.side(ctx)
				sideDone = true
				if tc.cancel {
					cancel()
				}
				return err
			}
			if err := runBeside(ctx, tc.run, side); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("runBeside = %v, want %v", err, tc.want)
			}
			if !sideDone {
				t.Error("runBeside returned before the side ended")
			}
		})
	}
}
