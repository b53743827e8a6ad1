package main

import (
	"context"

	"github.com/sluice-dev/sluice/producer"
	"github.com/sluice-dev/sluice/schema"
)

// What Sluice keeps in the state topic (<topic>.progress, see
// producer.State), by key:
//
//	progress/<db>.<table>/<start>/<end>/<topic>  a window's acknowledged id ranges, while the window is unfinished (backfill.ProgressKey, backfill.StateCheckpoints)
//	status/<job>                                 the job's last outcome, for recovery notifications (notify.StatusKey)
//	source/era                                   the source's version epoch (producer.EraKey)
//	tail/<name>                                  a tail's committed position (tail.PositionKey)
//	shape/<db>.<table>                           a source table's description (schema.SourceShape: its columns and unique indexes), written by the backfill and the tail before their first record of it, read by a consumer given no source DSN (shapeKey)
//
// The values are JSON. A finished window's progress is deleted (a
// tombstone), so running it again reads all of it.

// stateEpochs is the backfill.Epochs of run and backfill: the epoch kept in
// the state topic. A backfill never takes a new epoch for a read-only
// server that is not the one the epoch follows (producer.ErrStaleSource).
type stateEpochs struct{ st *producer.State }

func (e stateEpochs) Epoch(ctx context.Context, srv schema.Server) (uint16, string, error) {
	era, err := e.st.ResolveEra(ctx, producer.Sighting{Server: srv})
	return era.Epoch, era.Reason, err
}
