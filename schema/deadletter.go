package schema

// The headers of a dead letter: a record the consumer could not apply, as
// Sluice writes it to the dead-letter topic with the record's own key, value
// and headers. They are the format two stages agree on: the consumer decides
// a record is dead and names why and where it came from; the producer
// writes it (or a reference in its place) and re-drives it to its topic.
const (
	DLQHeaderReason    = "sluice.dlq.reason" // decode, validation, database
	DLQHeaderError     = "sluice.dlq.error"
	DLQHeaderTopic     = "sluice.dlq.topic"
	DLQHeaderPartition = "sluice.dlq.partition"
	DLQHeaderOffset    = "sluice.dlq.offset"
	DLQHeaderGroup     = "sluice.dlq.group"
	DLQHeaderTime      = "sluice.dlq.time"
	// DLQHeaderPrefix starts every header Sluice adds: a re-drive strips
	// them, a reference keeps them whatever their size.
	DLQHeaderPrefix = "sluice.dlq."
)

// A dead letter too large for the dead-letter topic is sent as a reference
// instead: the same headers, and these, with the value's first bytes as its
// value. A reference cannot be re-driven (there is no value to send back);
// the record itself is still at its coordinates in the source topic, within
// retention.
const (
	// DLQHeaderReference marks a reference and says why the value is not
	// kept.
	DLQHeaderReference = "sluice.dlq.reference"
	DLQHeaderValueSize = "sluice.dlq.value.size"   // the value's length in bytes
	DLQHeaderValueHash = "sluice.dlq.value.sha256" // the value's SHA-256, hex
	// DLQHeaderKeySize is set when the key, too, was cut to the reference's
	// head.
	DLQHeaderKeySize = "sluice.dlq.key.size"
	// DLQHeaderHeadersDropped counts original headers left out of a
	// reference because together they were over its bound.
	DLQHeaderHeadersDropped = "sluice.dlq.headers.dropped"
)
