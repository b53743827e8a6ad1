package schema_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

func mustTransform(t *testing.T, s schema.TransformSpec) schema.Transform {
	t.Helper()
	tr, err := schema.NewTransform(s)
	if err != nil {
		t.Fatalf("NewTransform(%v): %v", s, err)
	}
	return tr
}

func TestTransforms(t *testing.T) {
	tests := []struct {
		name     string
		spec     schema.TransformSpec
		in       string
		inNull   bool
		want     string
		wantNull bool
	}{
		{name: "upper ascii", spec: schema.TransformSpec{Name: "upper"}, in: "door open 3", want: "DOOR OPEN 3"},
		{name: "upper unicode", spec: schema.TransformSpec{Name: "upper"}, in: "straße ɐ é", want: "STRAßE Ɐ É"},
		{name: "upper null", spec: schema.TransformSpec{Name: "upper"}, inNull: true, wantNull: true},
		{name: "lower", spec: schema.TransformSpec{Name: "lower"}, in: "ÉTÉ Door", want: "été door"},
		{name: "trim", spec: schema.TransformSpec{Name: "trim"}, in: " \t a b \n\u00a0", want: "a b"},
		{name: "trim empty", spec: schema.TransformSpec{Name: "trim"}, in: "   ", want: ""},
		{name: "mask ascii", spec: schema.TransformSpec{Name: "mask", Keep: 4}, in: "+33612345678", want: "********5678"},
		{name: "mask utf8 counts characters", spec: schema.TransformSpec{Name: "mask", Keep: 2}, in: "éçà😀ü", want: "***😀ü"},
		{name: "mask shorter than keep", spec: schema.TransformSpec{Name: "mask", Keep: 4}, in: "é1", want: "é1"},
		{name: "mask keep 0", spec: schema.TransformSpec{Name: "mask"}, in: "ab😀", want: "***"},
		{name: "mask invalid utf8 byte is one character", spec: schema.TransformSpec{Name: "mask", Keep: 1}, in: "a\xffb", want: "**b"},
		{name: "mask null", spec: schema.TransformSpec{Name: "mask", Keep: 1}, inNull: true, wantNull: true},
		// RFC 4231, test case 2
		{name: "hash rfc4231", spec: schema.TransformSpec{Name: "hash", Key: []byte("Jefe"), KeyName: "K"}, in: "what do ya want for nothing?",
			want: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{name: "hash null", spec: schema.TransformSpec{Name: "hash", Key: []byte("Jefe")}, inNull: true, wantNull: true},
		{name: "null", spec: schema.TransformSpec{Name: "null"}, in: "x", wantNull: true},
		{name: "constant", spec: schema.TransformSpec{Name: "constant", Value: "redacted"}, in: "x", want: "redacted"},
		{name: "constant over null", spec: schema.TransformSpec{Name: "constant", Value: ""}, inNull: true, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			orig := bytes.Clone(in)
			got, null, err := mustTransform(t, tc.spec).Apply(in, tc.inNull)
			if err != nil {
				t.Fatal(err)
			}
			if null != tc.wantNull || (!null && string(got) != tc.want) {
				t.Errorf("got %q null=%v, want %q null=%v", got, null, tc.want, tc.wantNull)
			}
			if !bytes.Equal(in, orig) {
				t.Errorf("the input was modified in place: %q", in)
			}
		})
	}
}

// TestHashRFC4231Case1 uses the binary key of RFC 4231's first case.
func TestHashRFC4231Case1(t *testing.T) {
	tr := mustTransform(t, schema.TransformSpec{Name: "hash", Key: bytes.Repeat([]byte{0x0b}, 20)})
	got, _, _ := tr.Apply([]byte("Hi There"), false)
	if want := "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestUpperTransform: the upper transform (the IoT table's
// `message: [upper]`) upper-cases Unicode by simple case mapping, as
// strings.ToUpper does (verify applies the same), for ASCII, Unicode whose
// upper case is longer or shorter in bytes, and bytes that are not UTF-8;
// it is idempotent, and NULL stays NULL while the empty string stays empty.
func TestUpperTransform(t *testing.T) {
	up := mustTransform(t, schema.TransformSpec{Name: "upper"})
	for _, tc := range []struct{ in, want string }{
		{"door opened in zone 3", "DOOR OPENED IN ZONE 3"},
		{"OK", "OK"},
		// ß has no one-rune upper case; simple case mapping keeps it.
		{"straße", "STRAßE"},
		{"ÿ", "Ÿ"},
		{"élan αβγ жук", "ÉLAN ΑΒΓ ЖУК"},
		{"日本 123 🚪 -_", "日本 123 🚪 -_"},
		{"", ""},
	} {
		got, null, err := up.Apply([]byte(tc.in), false)
		if err != nil || null || string(got) != tc.want {
			t.Errorf("upper(%q) = %q (null=%v, %v), want %q", tc.in, got, null, err, tc.want)
		}
	}
	for _, in := range []string{"", "abc", "ABC 123", "door opened at gate 7!", "ɐɐ", "ıi", "ß", "ǅ", "ﬀ", "é😀z",
		"\xff", "ab\xc3", "\xed\xa0\x80", "mixed ascii then ü at the end", strings.Repeat("x", 33) + "ä", "Straße ÿ mixed Case"} {
		got, null, err := up.Apply([]byte(in), false)
		if err != nil || null || string(got) != strings.ToUpper(in) {
			t.Errorf("upper(%q) = %q (null=%v, %v), strings.ToUpper gives %q", in, got, null, err, strings.ToUpper(in))
		}
		again, _, _ := up.Apply(got, false)
		if string(again) != string(got) {
			t.Errorf("upper twice = %q, once = %q", again, got)
		}
	}
	if got, null, _ := up.Apply(nil, true); !null || got != nil {
		t.Errorf("NULL must stay NULL: %q, null=%v", got, null)
	}
}

func TestUpperAliasesUnchangedASCII(t *testing.T) {
	up := mustTransform(t, schema.TransformSpec{Name: "upper"})
	in := []byte("ALREADY UPPER 42")
	got, _, _ := up.Apply(in, false)
	if &got[0] != &in[0] {
		t.Errorf("upper copied a value it does not change")
	}
}

func TestNewTransformErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec schema.TransformSpec
		want string
	}{
		{name: "unknown", spec: schema.TransformSpec{Name: "reverse"}, want: `unknown transform "reverse"`},
		{name: "negative keep", spec: schema.TransformSpec{Name: "mask", Keep: -1}, want: "keep -1"},
		{name: "hash without key", spec: schema.TransformSpec{Name: "hash", KeyName: "PII_KEY"}, want: "PII_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schema.NewTransform(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestTransformStringHidesKey(t *testing.T) {
	s := schema.TransformSpec{Name: "hash", Key: []byte("s3cret-key"), KeyName: "PII_HASH_KEY_FILE"}
	if got := s.String(); strings.Contains(got, "s3cret") || !strings.Contains(got, "PII_HASH_KEY_FILE") {
		t.Errorf("String() = %q", got)
	}
}

func TestApplyTransformsInOrder(t *testing.T) {
	ts := []schema.Transform{
		mustTransform(t, schema.TransformSpec{Name: "trim"}),
		mustTransform(t, schema.TransformSpec{Name: "lower"}),
		mustTransform(t, schema.TransformSpec{Name: "hash", Key: []byte("Jefe")}),
	}
	a, _, _ := schema.ApplyTransforms(ts, []byte("  Ann@Example.COM "), false)
	b, _, _ := schema.ApplyTransforms(ts, []byte("ann@example.com"), false)
	if string(a) != string(b) || len(a) != 64 {
		t.Errorf("trim, lower, hash: %s vs %s", a, b)
	}
	// order matters: hash first, then upper, upper-cases the hex digits
	ts2 := []schema.Transform{ts[2], mustTransform(t, schema.TransformSpec{Name: "upper"})}
	c, _, _ := schema.ApplyTransforms(ts2, []byte("ann@example.com"), false)
	if string(c) != strings.ToUpper(string(b)) {
		t.Errorf("hash then upper = %s", c)
	}
}

func TestRuleErrorIs(t *testing.T) {
	err := error(&schema.RuleError{Table: "db.t", Column: "c", Rule: "required", Reason: "NULL"})
	var re *schema.RuleError
	if !errors.Is(err, schema.ErrRule) || !errors.As(err, &re) || re.Column != "c" {
		t.Errorf("RuleError: %v", err)
	}
	if want := "table db.t: column c: rule required: NULL"; !strings.Contains(err.Error(), want) {
		t.Errorf("Error() = %q, want it to contain %q", err, want)
	}
}
