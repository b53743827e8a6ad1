package schema

import (
	"errors"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	min, _ := parseDateTimeText([]byte("2020-01-01"))
	max, _ := parseDateTimeText([]byte("2020-12-31 23:59:59"))
	tests := []struct {
		name string
		rule Rule
		in   string
		null bool
		fail string // "" passes; else a part of the reason
	}{
		{name: "required value", rule: requiredRule(), in: "x"},
		{name: "required NULL", rule: requiredRule(), null: true, fail: "NULL"},
		{name: "required empty", rule: requiredRule(), in: "", fail: "empty"},
		{name: "max_length chars fits", rule: maxLengthRule(3, false), in: "😀😀😀"},
		{name: "max_length chars over", rule: maxLengthRule(3, false), in: "😀😀😀😀", fail: "4 characters, over 3"},
		{name: "max_length bytes over", rule: maxLengthRule(3, true), in: "é😀", fail: "6 bytes, over 3"},
		{name: "max_length bytes fits", rule: maxLengthRule(3, true), in: "a\x00b"},
		{name: "max_length NULL", rule: maxLengthRule(0, true), null: true},
		{name: "min date on a datetime", rule: timeRule(RuleMin, "2020-01-01", min), in: "2020-01-01 00:00:00"},
		{name: "min before", rule: timeRule(RuleMin, "2020-01-01", min), in: "2019-12-31 23:59:59.999999", fail: "before 2020-01-01"},
		{name: "min date value", rule: timeRule(RuleMin, "2020-01-01", min), in: "2019-12-31", fail: "before"},
		{name: "max inclusive", rule: timeRule(RuleMax, "2020-12-31 23:59:59", max), in: "2020-12-31 23:59:59"},
		{name: "max after", rule: timeRule(RuleMax, "2020-12-31 23:59:59", max), in: "2020-12-31 23:59:59.5", fail: "after"},
		{name: "zero date is no time", rule: timeRule(RuleMin, "2020-01-01", min), in: "0000-00-00 00:00:00", fail: "not a valid time"},
		{name: "time range NULL", rule: timeRule(RuleMax, "2020-12-31", max), null: true},
		{name: "implicit year range", rule: timeRule(RuleMin, "1000-01-01", minDateTime), in: "0999-12-31", fail: "before"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rule
			r.Table, r.Column = "db.t", "col"
			err := r.Check([]byte(tc.in), tc.null)
			if tc.fail == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Rule != r.Name || re.Column != "col" || re.Table != "db.t" || !strings.Contains(re.Reason, tc.fail) {
				t.Fatalf("err = %v, want a RuleError of rule %s on db.t col with %q", err, r.Name, tc.fail)
			}
		})
	}
}

func TestCheckRulesFirstFailure(t *testing.T) {
	rules := []Rule{requiredRule(), maxLengthRule(2, false)}
	for i := range rules {
		rules[i].Column = "c"
	}
	var re *RuleError
	if err := CheckRules(rules, nil, true); !errors.As(err, &re) || re.Rule != RuleRequired {
		t.Errorf("NULL: %v", err)
	}
	if err := CheckRules(rules, []byte("abc"), false); !errors.As(err, &re) || re.Rule != RuleMaxLength {
		t.Errorf("abc: %v", err)
	}
	if err := CheckRules(rules, []byte("ab"), false); err != nil {
		t.Errorf("ab: %v", err)
	}
}
