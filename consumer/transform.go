package consumer

import (
	"strings"

	"github.com/sluice-dev/sluice/schema"
)

// Transform turns a source row into the row the target keeps: the message is
// upper-cased (Unicode-aware, the same in the consumer and in verify). It
// changes r in place and never fails; a NULL message stays NULL.
func Transform(r *schema.Row) {
	if r.Message.Valid {
		r.Message.String = strings.ToUpper(r.Message.String)
	}
}
