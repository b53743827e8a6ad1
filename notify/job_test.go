package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// memStore is a Store in memory; failing makes every call fail.
type memStore struct {
	mu      sync.Mutex
	kv      map[string][]byte
	failing bool
}

func (m *memStore) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return nil, false, errors.New("store down")
	}
	v, ok := m.kv[key]
	return v, ok, nil
}

func (m *memStore) Put(_ context.Context, key string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing {
		return errors.New("store down")
	}
	m.kv[key] = v
	return nil
}

func TestJobFinish(t *testing.T) {
	var mu sync.Mutex
	var posted []Notice
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n Notice
		if err := json.Unmarshal(b, &n); err != nil {
			t.Errorf("posted %s: %v", b, err)
		}
		mu.Lock()
		posted = append(posted, n)
		mu.Unlock()
	}))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)
	wh, err := NewWebhook(srv.URL, "json", 5*time.Second, "sluice/test", log)
	if err != nil {
		t.Fatal(err)
	}
	store := &memStore{kv: map[string][]byte{}}
	kept := Job{Name: "run/t", Webhook: wh, Log: log, StoreTimeout: time.Second,
		Store: func(context.Context) (Store, error) { return store, nil }}
	notice := func() Notice { return Notice{Job: "run/t", Command: "run"} }
	failure := Status{Outcome: "failure", RunID: "r1", Stage: "backfill", ExitCode: 1}
	success := Status{Outcome: "success", RunID: "r2"}

	steps := []struct {
		name  string
		job   Job
		cur   Status
		event string // posted, or "" for nothing
	}{
		{name: "a failure is news", job: kept, cur: failure, event: Failure},
		{name: "the next success is a recovery", job: kept, cur: success, event: Recovery},
		{name: "a success after a success is not news", job: kept, cur: success},
		{name: "without a store, a success is not news", job: Job{Name: "consume/t", Webhook: wh, Log: log, Summary: true}, cur: success},
		{name: "without a store, a failure is", job: Job{Name: "consume/t", Webhook: wh, Log: log}, cur: failure, event: Failure},
	}
	for _, st := range steps {
		posted = nil
		st.job.Finish(t.Context(), st.cur, notice)
		mu.Lock()
		switch {
		case st.event == "" && len(posted) > 0:
			t.Errorf("%s: posted %+v, want nothing", st.name, posted)
		case st.event != "" && (len(posted) != 1 || posted[0].Event != st.event):
			t.Errorf("%s: posted %+v, want one %s", st.name, posted, st.event)
		case st.event == Recovery && (posted[0].Previous == nil || posted[0].Previous.RunID != "r1"):
			t.Errorf("%s: recovery's previous run %+v, want r1", st.name, posted[0].Previous)
		}
		mu.Unlock()
	}
	if js, ok, err := LoadStatus(t.Context(), store, "run/t"); err != nil || !ok || js.RunID != "r2" {
		t.Errorf("stored status %+v %v %v, want run r2's", js, ok, err)
	}

	// A store that is down loses the recovery, never the failure.
	store.failing = true
	posted = nil
	kept.Finish(t.Context(), failure, notice)
	if len(posted) != 1 || posted[0].Event != Failure {
		t.Errorf("store down: posted %+v, want the failure", posted)
	}
}
