package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/term"

	"github.com/sluice-dev/sluice/consumer"
)

// withMetrics serves /metrics, /healthz and /readyz on --metrics-addr while
// fn runs. The listener is opened first, so a taken port fails the command at
// once.
func (s *stage) withMetrics(ctx context.Context, fn func(context.Context) error) error {
	if s.o.metricsAddr == "" {
		return fn(ctx)
	}
	ln, err := net.Listen("tcp", s.o.metricsAddr)
	if err != nil {
		return usagef("--metrics-addr %s: %v (choose another address, or \"\" to disable)", s.o.metricsAddr, err)
	}
	srv := &http.Server{Handler: s.metricsMux(ctx), ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	s.log.Info("serving metrics", "addr", "http://"+ln.Addr().String()+"/metrics")
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		wg.Wait()
	}()
	return fn(ctx)
}

// metricsMux routes the endpoints of --metrics-addr:
//
//   - /metrics: the stage's registry;
//   - /healthz: liveness, "ok" while the process serves HTTP at all;
//   - /readyz: readiness, 200 once the command has connected to its database
//     and Kafka (stage.ready), 503 before that and from the moment shutdown
//     begins (ctx is done), so an orchestrator stops counting a member that is
//     leaving.
func (s *stage) metricsMux(ctx context.Context) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case ctx.Err() != nil:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		case s.ready.Load():
			fmt.Fprintln(w, "ready")
		default:
			http.Error(w, "starting: not connected to the database and Kafka yet", http.StatusServiceUnavailable)
		}
	})
	return mux
}

// startProgress redraws one status line on stderr every second while a
// command runs, only when stderr is a terminal. The returned func stops it.
func startProgress(line func(elapsed time.Duration) string) (stop func()) {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return func() {}
	}
	t0 := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(os.Stderr, "\r\x1b[K%s\n", line(time.Since(t0)))
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "\r\x1b[K%s", line(time.Since(t0)))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func consumeLine(st consumer.Stats, el time.Duration) string {
	return fmt.Sprintf("applied %d rows %.0f rows/s (%d batches)", st.Upserted+st.Deleted, float64(st.Upserted+st.Deleted)/el.Seconds(), st.Batches)
}
