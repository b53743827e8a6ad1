package schema

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// The validation rules a table's configuration may set per column.
const (
	RuleRequired  = "required"   // neither NULL nor empty
	RuleMaxLength = "max_length" // at most N characters (character types) or bytes (binary types)
	RuleMin       = "min"        // a time column's value is not before this time
	RuleMax       = "max"        // a time column's value is not after this time
)

// RuleSpec is one column's validation rules as configured; zero values
// mean no rule.
type RuleSpec struct {
	Required  bool
	MaxLength int64
	// Min and Max bound a DATE, DATETIME or TIMESTAMP column, both
	// inclusive, as "2006-01-02" or "2006-01-02 15:04:05[.ffffff]" (the
	// wall clock the value's text form shows; TIMESTAMP values read in UTC).
	Min, Max string
}

// ErrRule marks a value that a validation rule refuses: the consumer
// dead-letters its record. errors.As gives the *RuleError.
var ErrRule = errors.New("validation rule failed")

// RuleError is a value that a validation rule refused, with the table, the
// column and the rule named.
type RuleError struct {
	Table  string // the source table, db.table
	Column string // the source column
	Rule   string // required, max_length, min or max
	Reason string // what is wrong with the value, e.g. "300 characters, over 255"
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("%s: table %s: column %s: rule %s: %s", ErrRule, e.Table, e.Column, e.Rule, e.Reason)
}

// Unwrap makes errors.Is(err, ErrRule) true.
func (e *RuleError) Unwrap() error { return ErrRule }

// Rule is one validation rule of one column, checked against the value the
// target will store, that is after the column's transforms.
type Rule struct {
	Name string // required, max_length, min or max
	// Implicit is a rule Sluice adds from the target column's type (its
	// size, the years DATE and DATETIME hold) rather than the
	// configuration: the server would refuse the value, or truncate it.
	Implicit bool
	Table    string // the source table, for the RuleError
	Column   string // the source column, for the RuleError
	desc     string
	check    func(v []byte, null bool) string // "" or why v fails
}

// Check returns nil, or a *RuleError saying why the rule refuses the value.
func (r Rule) Check(v []byte, null bool) error {
	if why := r.check(v, null); why != "" {
		return &RuleError{Table: r.Table, Column: r.Column, Rule: r.Name, Reason: why}
	}
	return nil
}

// String describes the rule for plans: "required", "max_length 255
// characters", "min 2000-01-01"; implicit rules say they come from the
// target.
func (r Rule) String() string {
	if r.Implicit {
		return r.desc + " (target type)"
	}
	return r.desc
}

func requiredRule() Rule {
	return Rule{Name: RuleRequired, desc: RuleRequired, check: func(v []byte, null bool) string {
		switch {
		case null:
			return "NULL"
		case len(v) == 0:
			return "empty"
		}
		return ""
	}}
}

// maxLengthRule refuses a value longer than max, in characters of UTF-8
// text or, with inBytes, in bytes.
func maxLengthRule(max int64, inBytes bool) Rule {
	unit := "characters"
	if inBytes {
		unit = "bytes"
	}
	return Rule{Name: RuleMaxLength, desc: fmt.Sprintf("%s %d %s", RuleMaxLength, max, unit), check: func(v []byte, null bool) string {
		if null || int64(len(v)) <= max { // no character is shorter than a byte: no need to count
			return ""
		}
		n := int64(len(v))
		if !inBytes {
			n = int64(utf8.RuneCount(v))
		}
		if n <= max {
			return ""
		}
		return fmt.Sprintf("%d %s, over %d", n, unit, max)
	}}
}

// timeRule refuses a time before bound (min) or after it (max). A value
// that is not a valid time in its text form (a zero date) fails either.
func timeRule(name, text string, bound time.Time) Rule {
	return Rule{Name: name, desc: name + " " + text, check: func(v []byte, null bool) string {
		if null {
			return ""
		}
		t, ok := parseDateTimeText(v)
		switch {
		case !ok:
			return fmt.Sprintf("%q is not a valid time", v)
		case name == RuleMin && t.Before(bound):
			return fmt.Sprintf("%s is before %s", v, text)
		case name == RuleMax && t.After(bound):
			return fmt.Sprintf("%s is after %s", v, text)
		}
		return ""
	}}
}

// parseDateTimeText reads the text form of a DATE ("2006-01-02") or a DATETIME
// or TIMESTAMP ("2006-01-02 15:04:05" with up to 6 fractional digits).
func parseDateTimeText(v []byte) (time.Time, bool) {
	s := string(v)
	layout := time.DateOnly
	if len(s) > len(time.DateOnly) {
		layout = "2006-01-02 15:04:05.999999"
		if len(s) > 10 && s[10] == 'T' {
			layout = "2006-01-02T15:04:05.999999"
		}
	}
	t, err := time.Parse(layout, s)
	return t, err == nil
}

// The years DATE and DATETIME hold.
var (
	minDateTime = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxDateTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// CheckRules runs rules over one value and returns the first failure.
func CheckRules(rules []Rule, v []byte, null bool) error {
	for _, r := range rules {
		if err := r.Check(v, null); err != nil {
			return err
		}
	}
	return nil
}
