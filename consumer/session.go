package consumer

import (
	"time"

	"github.com/go-sql-driver/mysql"
)

// TargetSession sets what the consumer's correctness relies on in every
// session of the target's pool; cmd/sluice applies it to the target DSN.
//
//   - Times are read and written in UTC: the client reads DATETIME as a wall
//     clock labelled UTC (ParseTime, Loc), and the session's time_zone is
//     +00:00, so TIMESTAMP values go in and out as UTC instants.
//   - Parameters are interpolated on the client, so a 10,000-row upsert is
//     one round trip with no placeholder limit.
//   - Affected rows count changed rows only (ClientFoundRows off): with
//     unchanged rows counting 0, the upsert's result tells new rows from
//     updated ones (tablewriter.go).
func TargetSession(cfg *mysql.Config) {
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.ClientFoundRows = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
}
