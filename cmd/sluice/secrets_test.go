package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dsnFile := write("dsn", "u:s3cret@tcp(db:3306)/src\n")
	pwFile := write("pw", "pa:ss@/word\r\n")
	empty := write("empty", "\n")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		source  string // the DSN's user:password@addr/db after parse
		target  string
		webhook string
		err     []string
	}{
		{name: "a DSN from a file", env: map[string]string{"SLUICE_SOURCE_DSN_FILE": dsnFile}, source: "u:s3cret@db:3306/src"},
		{name: "a password from a file", env: map[string]string{"SLUICE_TARGET_DSN": "dst@tcp(db2:3306)/tgt", "SLUICE_TARGET_PASSWORD_FILE": pwFile},
			target: "dst:pa:ss@/word@db2:3306/tgt"},
		{name: "the default DSN takes a password file", env: map[string]string{"SLUICE_SOURCE_PASSWORD_FILE": pwFile}, source: "sluice:pa:ss@/word@127.0.0.1:3307/source_db"},
		{name: "a webhook from a file", env: map[string]string{"SLUICE_NOTIFY_WEBHOOK_FILE": write("hook", "https://hooks.example/T0/B0/token\n")}, webhook: "https://hooks.example/T0/B0/token"},
		{name: "file and variable", env: map[string]string{"SLUICE_SOURCE_DSN_FILE": dsnFile, "SLUICE_SOURCE_DSN": "x@tcp(h)/d"},
			err: []string{"SLUICE_SOURCE_DSN_FILE and SLUICE_SOURCE_DSN"}},
		{name: "file and flag", env: map[string]string{"SLUICE_SOURCE_DSN_FILE": dsnFile}, args: []string{"--source-dsn", "x@tcp(h)/d"},
			err: []string{"SLUICE_SOURCE_DSN_FILE and --source-dsn"}},
		{name: "password twice", env: map[string]string{"SLUICE_SOURCE_DSN": "u:pw@tcp(h)/d", "SLUICE_SOURCE_PASSWORD_FILE": pwFile},
			err: []string{"SLUICE_SOURCE_PASSWORD_FILE", "--source-dsn", "once"}},
		{name: "missing file", env: map[string]string{"SLUICE_TARGET_DSN_FILE": filepath.Join(dir, "nope")}, err: []string{"SLUICE_TARGET_DSN_FILE", "nope"}},
		{name: "empty file", env: map[string]string{"SLUICE_TARGET_PASSWORD_FILE": empty}, err: []string{"SLUICE_TARGET_PASSWORD_FILE", "is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"SLUICE_SOURCE_DSN", "SLUICE_TARGET_DSN", "SLUICE_SOURCE_DSN_FILE", "SLUICE_TARGET_DSN_FILE",
				"SLUICE_SOURCE_PASSWORD_FILE", "SLUICE_TARGET_PASSWORD_FILE", "SLUICE_NOTIFY_WEBHOOK", "SLUICE_NOTIFY_WEBHOOK_FILE"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := newCommand("run")
			c.source()
			c.target()
			c.notify()
			err := c.parse(tc.args)
			if len(tc.err) > 0 {
				for _, w := range tc.err {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("error %v, want it to say %q", err, w)
					}
				}
				if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "pa:ss")) {
					t.Errorf("error %q shows a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []struct{ dsn, want string }{{c.o.sourceDSN, tc.source}, {c.o.targetDSN, tc.target}} {
				if d.want == "" {
					continue
				}
				cfg, err := mysql.ParseDSN(d.dsn)
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.User + ":" + cfg.Passwd + "@" + cfg.Addr + "/" + cfg.DBName; got != d.want {
					t.Errorf("DSN %s, want %s", got, d.want)
				}
			}
			if tc.webhook != "" && c.o.notifyWebhook != tc.webhook {
				t.Errorf("webhook %q, want %q", c.o.notifyWebhook, tc.webhook)
			}
		})
	}
}
