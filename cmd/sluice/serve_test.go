package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestHealthAndReadiness walks /readyz through a stage's life: starting
// (503), connected (200), shutting down (503), while /healthz answers
// throughout.
func TestHealthAndReadiness(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := &stage{o: &options{}, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	mux := s.metricsMux(ctx)
	get := func(path string) int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	check := func(step, path string, want int) {
		t.Helper()
		if got := get(path); got != want {
			t.Errorf("%s: GET %s = %d, want %d", step, path, got, want)
		}
	}

	check("starting", "/healthz", http.StatusOK)
	check("starting", "/readyz", http.StatusServiceUnavailable)

	s.ready.Store(true) // what a command does once connected
	check("connected", "/readyz", http.StatusOK)

	cancel()
	check("shutting down", "/readyz", http.StatusServiceUnavailable)
	check("shutting down", "/healthz", http.StatusOK)
}
