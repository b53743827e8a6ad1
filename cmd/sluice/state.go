package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// What Sluice keeps in the state topic (<topic>.progress, see
// producer.State), by key:
//
//	progress/<db>.<table>/<start>/<end>/<topic>  a window's acknowledged id ranges, while the window is unfinished (backfill.ProgressKey, backfill.StateCheckpoints)
//	status/<job>                                 the job's last outcome, for recovery notifications
//	source/era                                   the source's version epoch (producer.EraKey)
//	tail/<name>                                  a tail's committed position (tail.PositionKey)
//
// Both values are JSON. A finished window's progress is deleted (a
// tombstone), so running it again reads all of it.

// jobStatus is the value of a status key: how the job's last run ended.
type jobStatus struct {
	Outcome  string    `json:"outcome"` // success, failure or partial
	RunID    string    `json:"run_id"`
	At       time.Time `json:"at"`
	Stage    string    `json:"stage,omitempty"`
	Error    string    `json:"error,omitempty"`
	ExitCode int       `json:"exit_code"`
}

func statusKey(job string) string { return "status/" + job }

func loadJobStatus(ctx context.Context, st *producer.State, job string) (jobStatus, bool, error) {
	var js jobStatus
	v, ok, err := st.Get(ctx, statusKey(job))
	if err != nil || !ok {
		return js, false, err
	}
	if err := json.Unmarshal(v, &js); err != nil {
		return js, false, fmt.Errorf("status of job %s in %s: %w", job, st.Topic(), err)
	}
	return js, true, nil
}

func saveJobStatus(ctx context.Context, st *producer.State, job string, js jobStatus) error {
	v, err := json.Marshal(js)
	if err != nil {
		return err
	}
	return st.Put(ctx, statusKey(job), v)
}

// stateEpochs is the backfill.Epochs of run and backfill: the epoch kept in
// the state topic. A backfill never takes a new epoch for a read-only
// server that is not the one the epoch follows (producer.ErrStaleSource).
type stateEpochs struct{ st *producer.State }

func (e stateEpochs) Epoch(ctx context.Context, srv schema.Server) (uint16, string, error) {
	era, err := e.st.ResolveEra(ctx, producer.Sighting{Server: srv})
	return era.Epoch, era.Reason, err
}
