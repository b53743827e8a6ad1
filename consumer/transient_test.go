package consumer

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestTransientMySQL(t *testing.T) {
	myErr := func(n uint16) error { return &mysql.MySQLError{Number: n, Message: "x"} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "deadlock 1213", err: myErr(1213), want: true},
		{name: "lock wait timeout 1205", err: myErr(1205), want: true},
		{name: "read only 1290", err: myErr(1290), want: true},
		{name: "read only mode 1836", err: myErr(1836), want: true},
		{name: "server gone 2006", err: myErr(2006), want: true},
		{name: "server lost 2013", err: myErr(2013), want: true},
		{name: "duplicate key 1062", err: myErr(1062), want: false},
		{name: "syntax 1064", err: myErr(1064), want: false},
		{name: "data too long 1406", err: myErr(1406), want: false},
		{name: "invalid conn", err: mysql.ErrInvalidConn, want: true},
		{name: "bad conn", err: driver.ErrBadConn, want: true},
		{name: "context canceled", err: context.Canceled, want: false},
		{name: "deadline exceeded", err: context.DeadlineExceeded, want: false},
		{name: "plain error", err: errors.New("boom"), want: false},
		{name: "wrapped deadlock", err: fmt.Errorf("upsert batch: %w", myErr(1213)), want: true},
		{name: "twice wrapped lock wait", err: fmt.Errorf("a: %w", fmt.Errorf("b: %w", myErr(1205))), want: true},
		{name: "wrapped duplicate key", err: fmt.Errorf("upsert: %w", myErr(1062)), want: false},
		{name: "wrapped invalid conn", err: fmt.Errorf("commit: %w", mysql.ErrInvalidConn), want: true},
		{name: "wrapped bad conn", err: fmt.Errorf("begin: %w", driver.ErrBadConn), want: true},
		{name: "refused dial (a restarting server)", err: fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), want: true},
		{name: "wrapped canceled", err: fmt.Errorf("begin: %w", context.Canceled), want: false},
		{name: "canceled beside a deadlock", err: fmt.Errorf("%w: %w", context.Canceled, myErr(1213)), want: false},
		{name: "canceled beside a bad conn", err: errors.Join(driver.ErrBadConn, context.Canceled), want: false},
		{name: "not wrapped, only formatted", err: fmt.Errorf("upsert: %v", myErr(1213)), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := transientMySQL(tt.err); got != tt.want {
				t.Errorf("transientMySQL(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
