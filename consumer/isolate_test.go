package consumer

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestRowRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		row  bool
	}{
		{"data too long", &mysql.MySQLError{Number: 1406}, true},
		{"trigger SIGNAL", fmt.Errorf("write batch: upsert: %w", &mysql.MySQLError{Number: 1644}), true},
		{"MariaDB CHECK", &mysql.MySQLError{Number: 4025}, true},
		{"foreign key", &mysql.MySQLError{Number: 1452}, true},
		{"deadlock", &mysql.MySQLError{Number: 1213}, false},
		{"read-only", &mysql.MySQLError{Number: 1290}, false},
		{"disk full", &mysql.MySQLError{Number: 1021}, false},
		{"lost connection", mysql.ErrInvalidConn, false},
		{"shutdown", context.Canceled, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rowRejected(tc.err); got != tc.row {
				t.Errorf("rowRejected(%v) = %v, want %v", tc.err, got, tc.row)
			}
		})
	}
}
