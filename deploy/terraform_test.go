package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// TestTerraformParsesAndIsFormatted parses every file of deploy/ecs with
// HCL's own parser (what Terraform uses) and requires `terraform fmt`'s
// canonical layout, which hclwrite.Format produces. It then checks the
// pieces the deploy issue asks for. It needs no terraform binary.
func TestTerraformParsesAndIsFormatted(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "ecs")
	parser := hclparse.NewParser()
	blocks := map[string][]*hclsyntax.Block{} // by type: resource, variable, locals, …
	for _, f := range files(t, dir, ".tf", ".tfvars") {
		src := readFile(t, filepath.Join(dir, f))
		file, diags := parser.ParseHCL(src, f)
		if diags.HasErrors() {
			t.Errorf("%s: %s", f, diags.Error())
			continue
		}
		if formatted := hclwrite.Format(src); !bytes.Equal(formatted, src) {
			t.Errorf("%s is not in canonical format (terraform fmt): want\n%s", f, formatted)
		}
		if strings.HasSuffix(f, ".tf") {
			for _, b := range file.Body.(*hclsyntax.Body).Blocks {
				blocks[b.Type] = append(blocks[b.Type], b)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	resources := map[string]*hclsyntax.Block{}
	for _, b := range blocks["resource"] {
		resources[strings.Join(b.Labels, ".")] = b
	}
	variables := map[string]*hclsyntax.Block{}
	for _, b := range blocks["variable"] {
		variables[b.Labels[0]] = b
	}
	for _, want := range []string{
		"aws_ecs_cluster.this", "aws_ecs_task_definition.this", "aws_ecs_service.consume", "aws_ecs_service.tail",
		"aws_scheduler_schedule.nightly", "aws_secretsmanager_secret.dsn", "aws_cloudwatch_log_group.this",
		"aws_iam_role.execution", "aws_iam_role.task", "aws_iam_role.scheduler",
	} {
		if resources[want] == nil {
			t.Errorf("no resource %s", want)
		}
	}

	t.Run("task definitions for run, consume and tail on Fargate", func(t *testing.T) {
		var tasks []string
		for _, b := range blocks["locals"] {
			if a := b.Body.Attributes["tasks"]; a != nil {
				obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
				if !ok {
					t.Fatalf("local.tasks is a %T, want an object", a.Expr)
				}
				for _, item := range obj.Items {
					tasks = append(tasks, hcl.ExprAsKeyword(item.KeyExpr))
				}
			}
		}
		slices.Sort(tasks)
		if !slices.Equal(tasks, []string{"consume", "run", "tail"}) {
			t.Errorf("local.tasks %v, want consume, run, tail", tasks)
		}
		td := resources["aws_ecs_task_definition.this"]
		if td == nil {
			t.FailNow()
		}
		src := string(exprSource(t, dir, td.Body.Attributes["requires_compatibilities"]))
		if !strings.Contains(src, `"FARGATE"`) {
			t.Errorf("requires_compatibilities %s, want FARGATE", src)
		}
		cd := string(exprSource(t, dir, td.Body.Attributes["container_definitions"]))
		for _, want := range []string{"secrets", "logConfiguration", `"awslogs"`, "awslogs-group"} {
			if !strings.Contains(cd, want) {
				t.Errorf("container_definitions lack %s", want)
			}
		}
		for _, secret := range []string{"SLUICE_SOURCE_DSN", "SLUICE_TARGET_DSN"} {
			if !strings.Contains(string(readFile(t, filepath.Join(dir, "main.tf"))), `name = "`+secret+`", valueFrom = aws_secretsmanager_secret.dsn[`) {
				t.Errorf("%s is not read from a Secrets Manager secret", secret)
			}
		}
	})

	t.Run("the schedule and its pause switch", func(t *testing.T) {
		s := resources["aws_scheduler_schedule.nightly"]
		if s == nil {
			t.FailNow()
		}
		if got := string(exprSource(t, dir, s.Body.Attributes["state"])); got != "var.schedule_state" {
			t.Errorf("state = %s, want var.schedule_state", got)
		}
		v := variables["schedule_state"]
		if v == nil {
			t.Fatal("no variable schedule_state")
		}
		if def := string(exprSource(t, dir, v.Body.Attributes["default"])); def != `"ENABLED"` {
			t.Errorf("schedule_state default %s, want \"ENABLED\"", def)
		}
		if len(v.Body.Blocks) == 0 || v.Body.Blocks[0].Type != "validation" {
			t.Error("schedule_state needs a validation (ENABLED or DISABLED)")
		}
		if def := string(exprSource(t, dir, variables["schedule_expression"].Body.Attributes["default"])); def != `"cron(0 2 * * ? *)"` {
			t.Errorf("schedule_expression default %s, want 02:00 daily", def)
		}
	})

	// One tail task at most, the old one gone before the new one starts (a
	// second would fence the first), on unless tail_enabled = false.
	t.Run("the tail service", func(t *testing.T) {
		svc := resources["aws_ecs_service.tail"]
		if svc == nil {
			t.FailNow()
		}
		for attr, want := range map[string]string{
			"desired_count":                      "var.tail_enabled ? 1 : 0",
			"deployment_minimum_healthy_percent": "0",
			"deployment_maximum_percent":         "100",
			"task_definition":                    `aws_ecs_task_definition.this["tail"].arn`,
		} {
			if got := string(exprSource(t, dir, svc.Body.Attributes[attr])); got != want {
				t.Errorf("aws_ecs_service.tail %s = %s, want %s", attr, got, want)
			}
		}
		v := variables["tail_enabled"]
		if v == nil {
			t.Fatal("no variable tail_enabled")
		}
		if def := string(exprSource(t, dir, v.Body.Attributes["default"])); def != "true" {
			t.Errorf("tail_enabled default %s, want true (tail mode has landed)", def)
		}
		if resources["aws_cloudwatch_metric_alarm.tail_failed"] == nil {
			t.Error("no alarm for a tail that stops with an error")
		}
	})

	t.Run("RDS Proxy and connection lifetime are documented", func(t *testing.T) {
		vars := string(readFile(t, filepath.Join(dir, "variables.tf")))
		for _, want := range []string{"RDS Proxy", "ConnMaxLifetime", "idle client timeout"} {
			if !strings.Contains(vars, want) {
				t.Errorf("variables.tf does not mention %s", want)
			}
		}
	})
}

// exprSource returns the source text of an attribute's expression.
func exprSource(t *testing.T, dir string, a *hclsyntax.Attribute) []byte {
	t.Helper()
	if a == nil {
		t.Fatal("attribute missing")
	}
	r := a.Expr.Range()
	return readFile(t, filepath.Join(dir, r.Filename))[r.Start.Byte:r.End.Byte]
}

// TestTerraformValidate runs `terraform fmt -check` and `terraform validate`
// when a terraform binary and a local copy of the AWS provider are at hand
// (SLUICE_TF_PLUGIN_DIR, default /opt/tf-plugins, laid out as a provider
// mirror). `terraform init` is given only that directory, so nothing is
// downloaded. Neither can be installed from Debian, so this check is
// skipped, never failed, where they are missing.
func TestTerraformValidate(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform not installed: the HCL parse and format check above still ran")
	}
	plugins := os.Getenv("SLUICE_TF_PLUGIN_DIR")
	if plugins == "" {
		plugins = "/opt/tf-plugins"
	}
	if _, err := os.Stat(filepath.Join(plugins, "registry.terraform.io", "hashicorp", "aws")); err != nil {
		t.Skipf("no local AWS provider under %s (terraform init would download it): %v", plugins, err)
	}
	src := filepath.Join(repoRoot(t), "deploy", "ecs")
	work := t.TempDir()
	for _, f := range files(t, src, ".tf") {
		if err := os.WriteFile(filepath.Join(work, f), readFile(t, filepath.Join(src, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0", "TF_DATA_DIR=" + filepath.Join(work, ".terraform")}
	for _, args := range [][]string{
		{"fmt", "-check", "-diff", src},
		{"init", "-backend=false", "-input=false", "-no-color", "-plugin-dir=" + plugins},
		{"validate", "-no-color"},
	} {
		if out, err := run(t, work, nil, env, tf, args...); err != nil {
			t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
