package main

import (
	"flag"
	"os"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// secretFlags are the flags that carry secrets: a DSN's password, a
// webhook URL's token. Each also reads SLUICE_<FLAG>_FILE, a file holding
// the value, as Kubernetes and ECS mount secrets, so that the value is in
// no environment variable either.
var secretFlags = []string{"source-dsn", "target-dsn", "notify-webhook"}

// passwordFiles give a DSN's password alone, from a file: the DSN itself
// (without a password) may then sit in a ConfigMap or a task definition.
var passwordFiles = []struct{ flag, env string }{
	{"source-dsn", "SLUICE_SOURCE_PASSWORD_FILE"},
	{"target-dsn", "SLUICE_TARGET_PASSWORD_FILE"},
}

// readSecretFiles fills the secret flags that neither the command line
// nor their SLUICE_<FLAG> variable set from SLUICE_<FLAG>_FILE, and puts
// the password files' passwords into their DSNs. set holds the flags given
// on the command line. Giving a value twice (the variable and the file, or
// a DSN's password and a password file) is a usage error naming both: one
// of them would be silently ignored.
func (c *command) readSecretFiles(set map[string]bool) error {
	for _, name := range secretFlags {
		f := c.fs.Lookup(name)
		if f == nil {
			continue
		}
		env := envName(name)
		path, ok := os.LookupEnv(env + "_FILE")
		if !ok || path == "" {
			continue
		}
		if set[name] {
			return usagef("%s_FILE and --%s: give the value once", env, name)
		}
		if _, both := os.LookupEnv(env); both {
			return usagef("%s_FILE and %s: give the value once", env, env)
		}
		v, err := readSecret(env+"_FILE", path)
		if err != nil {
			return err
		}
		if err := c.fs.Set(name, v); err != nil {
			return usagef("%s_FILE %s: %v", env, path, err)
		}
	}
	for _, p := range passwordFiles {
		f := c.fs.Lookup(p.flag)
		path, ok := os.LookupEnv(p.env)
		if f == nil || !ok || path == "" {
			continue
		}
		if err := setPassword(f, p.env, path); err != nil {
			return err
		}
	}
	return nil
}

// setPassword puts the password in the file at path into the DSN of f.
func setPassword(f *flag.Flag, env, path string) error {
	cfg, err := mysql.ParseDSN(f.Value.String())
	if err != nil {
		return usagef("--%s: %v", f.Name, err)
	}
	if cfg.Passwd != "" && f.Value.String() != f.DefValue {
		return usagef("%s and a password in --%s: give the password once", env, f.Name)
	}
	if cfg.Passwd, err = readSecret(env, path); err != nil {
		return err
	}
	return f.Value.Set(cfg.FormatDSN())
}

// readSecret reads a secret file, less its trailing line break (what
// `echo` and most editors leave). The error names the variable and the
// path, never the content.
func readSecret(env, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("%s: %v", env, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", usagef("%s: %s is empty", env, path)
	}
	return v, nil
}
