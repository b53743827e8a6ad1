package consumer

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestRecordError(t *testing.T) {
	inner := fmt.Errorf("validate: %w", io.ErrUnexpectedEOF)
	var err error = &RecordError{Topic: "sluice.raw_records", Partition: 7, Offset: 12345, Key: []byte(`{"device_type":"d"}`), Err: inner}
	msg := err.Error()
	for _, want := range []string{"sluice.raw_records/7@12345", `{"device_type":"d"}`, "validate: unexpected EOF"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, want it to contain %q", msg, want)
		}
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("RecordError does not unwrap to its cause")
	}
	wrapped := fmt.Errorf("consume: %w", err)
	var re *RecordError
	if !errors.As(wrapped, &re) || re.Offset != 12345 || re.Partition != 7 {
		t.Errorf("errors.As through a wrap = %v, %+v", errors.As(wrapped, &re), re)
	}
}
