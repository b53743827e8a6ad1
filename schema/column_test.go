package schema

import (
	"slices"
	"testing"
)

func TestParseElements(t *testing.T) {
	for in, want := range map[string][]string{
		"enum('a','B')":         {"a", "B"},
		"set('x y','it''s','')": {"x y", "it's", ""},
		"enum('(,)')":           {"(,)"},
	} {
		if got := parseElements(in); !slices.Equal(got, want) {
			t.Errorf("parseElements(%q) = %q, want %q", in, got, want)
		}
	}
	if got := bitWidth("BIT(17)"); got != 17 {
		t.Errorf("bitWidth(BIT(17)) = %d", got)
	}
}
