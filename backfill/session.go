package backfill

import (
	"time"

	"github.com/go-sql-driver/mysql"
)

// SourceSession sets what the backfill's reads rely on in every session of
// the source's pool; cmd/sluice applies it to the source DSN (the tail and
// verify read the source through the same settings). Times are read in
// UTC: DATETIME as a wall clock labelled UTC (ParseTime, Loc), TIMESTAMP as
// an instant through the session's time_zone +00:00. Parameters are
// interpolated on the client: a chunk's query is one round trip.
func SourceSession(cfg *mysql.Config) {
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
}
