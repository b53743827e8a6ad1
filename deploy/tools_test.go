package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// strict reports whether a missing tool must fail its check: in CI and under
// `make test`, which installs the tools first (make test-deps).
func strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("SLUICE_REQUIRE_INTEGRATION") == "1"
}

// needTool returns the path of an external checker, skipping the test when
// it is missing, or failing it when strict() holds.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " not found: run `make test-deps` (as root it installs Debian's " + debianPackage + " package)"
	if strict() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// repoRoot is the repository root: this package lives in deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source")
	}
	return filepath.Dir(filepath.Dir(file))
}

// run runs a tool with a deadline and returns its combined output. The
// environment is the test's plus env.
func run(t *testing.T, dir string, stdin []byte, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// files lists the files under dir (recursively) whose names end in one of
// the suffixes, as paths relative to dir, sorted.
func files(t *testing.T, dir string, suffixes ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != dir {
			return filepath.SkipDir // .terraform and the like
		}
		for _, s := range suffixes {
			if !d.IsDir() && strings.HasSuffix(d.Name(), s) {
				rel, err := filepath.Rel(dir, path)
				if err != nil {
					return err
				}
				out = append(out, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no %v files under %s", suffixes, dir)
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
