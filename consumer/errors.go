package consumer

import (
	"fmt"
)

// RecordError is a record the consumer could not apply. It names the record by
// its Kafka coordinates and key, so an operator can fetch it.
type RecordError struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Err       error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("record %s/%d@%d key %s: %v", e.Topic, e.Partition, e.Offset, e.Key, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
