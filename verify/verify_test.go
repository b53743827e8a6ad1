package verify

import "testing"

func TestSliceMatch(t *testing.T) {
	tests := []struct {
		name string
		s    Slice
		want bool
	}{
		{name: "equal", s: Slice{SourceRows: 3, TargetRows: 3, SourceSum: 9, TargetSum: 9}, want: true},
		{name: "empty", s: Slice{}, want: true},
		{name: "row missing", s: Slice{SourceRows: 3, TargetRows: 2, SourceSum: 9, TargetSum: 9}},
		{name: "content differs", s: Slice{SourceRows: 3, TargetRows: 3, SourceSum: 9, TargetSum: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Match(); got != tt.want {
				t.Errorf("Match() = %v, want %v", got, tt.want)
			}
		})
	}
}
