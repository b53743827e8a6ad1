package schema

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeTableSpec(t *testing.T) {
	secret := func(name string) ([]byte, string, error) {
		if name != "PII_KEY" {
			return nil, "", errors.New("secret " + name + ": not set")
		}
		return []byte("k3y"), name + "_FILE", nil
	}
	raw := `{"source": "crm.customers", "target": "analytics.customers", "window": "signed_up", "key": ["email"],
		"columns": {"exclude": ["ssn"], "rename": {"full_name": "name"}},
		"transforms": {"email": ["trim", "lower", {"hash": {"secret": "PII_KEY"}}], "phone": [{"mask": {"keep": 4}}], "note": [null, {"constant": 7}]},
		"rules": {"email": {"required": true, "max_length": 120}, "signed_up": {"min": "2000-01-01"}}}`
	got, err := DecodeTableSpec(0, []byte(raw), secret)
	if err != nil {
		t.Fatal(err)
	}
	want := TableSpec{
		Source: "crm.customers", Target: "analytics.customers", Window: "signed_up", Key: []string{"email"},
		Columns: ColumnsSpec{Exclude: []string{"ssn"}, Rename: map[string]string{"full_name": "name"}},
		Transforms: map[string][]TransformSpec{
			"email": {{Name: TransformTrim}, {Name: TransformLower}, {Name: TransformHash, Key: []byte("k3y"), KeyName: "PII_KEY_FILE"}},
			"phone": {{Name: TransformMask, Keep: 4}},
			"note":  {{Name: TransformNull}, {Name: TransformConstant, Value: "7"}},
		},
		Rules: map[string]RuleSpec{"email": {Required: true, MaxLength: 120}, "signed_up": {Min: "2000-01-01"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeTableSpec = %+v\nwant %+v", got, want)
	}
}

func TestDecodeTableSpecErrors(t *testing.T) {
	secret := func(name string) ([]byte, string, error) { return nil, "", errors.New("secret " + name + ": not set") }
	tests := []struct {
		name string
		json string // the entry, less its source
		want string // a part of the error
	}{
		{name: "unknown field", json: `"windw": "ts"`, want: `tables[3] (db.t): unknown field "windw"`},
		{name: "unknown rule", json: `"rules": {"c": {"max_len": 3}}`, want: `unknown field "max_len"`},
		{name: "unknown columns field", json: `"columns": {"drop": ["c"]}`, want: `unknown field "drop"`},
		{name: "unknown transform", json: `"transforms": {"c": ["reverse"]}`, want: `unknown transform "reverse"`},
		{name: "unknown transform map", json: `"transforms": {"c": [{"rot13": 1}]}`, want: `unknown transform "rot13"`},
		{name: "mask without keep", json: `"transforms": {"c": ["mask"]}`, want: "mask needs the characters to keep"},
		{name: "mask with a misspelt argument", json: `"transforms": {"c": [{"mask": {"kep": 4}}]}`, want: "mask: want {keep: N}"},
		{name: "two transforms in one item", json: `"transforms": {"c": [{"mask": {"keep": 1}, "constant": "x"}]}`, want: "a map of one name"},
		{name: "hash without secret", json: `"transforms": {"c": [{"hash": {}}]}`, want: "hash: want {secret: VAR}"},
		{name: "hash secret not given", json: `"transforms": {"c": [{"hash": {"secret": "K"}}]}`, want: "tables[3] (db.t): transforms.c[0]: hash: secret K: not set"},
		{name: "constant null", json: `"transforms": {"c": [{"constant": null}]}`, want: "use the null transform for NULL"},
		{name: "key not a list", json: `"key": "a"`, want: "key: a string where a list is expected"},
		{name: "max_length not a number", json: `"rules": {"c": {"max_length": "long"}}`, want: "rules.max_length: a string where a number is expected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeTableSpec(3, []byte(`{"source": "db.t", `+tc.json+`}`), secret)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := DecodeTableSpec(0, []byte(`{"target": "db.t"}`), secret); err == nil || err.Error() != "tables[0] (): source: required (db.table)" {
		t.Errorf("no source: err = %v", err)
	}
}
