# Did the nightly run succeed? The task logs JSON (SLUICE_LOG_FORMAT=json):
# a successful run logs msg "run summary", a failed one "run failed". A run
# killed before it can log (out of memory, task stopped) logs neither; the
# "not succeeded" alarm still catches it a day later.
resource "aws_cloudwatch_log_metric_filter" "run" {
  for_each = {
    NightlyRunSucceeded = "run summary"
    NightlyRunFailed    = "run failed"
  }

  name           = "${var.name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.this["run"].name
  pattern        = "{ $.msg = \"${each.value}\" }"

  metric_transformation {
    name      = each.key
    namespace = "Sluice/${var.name}"
    value     = "1"
  }
}

resource "aws_cloudwatch_metric_alarm" "run_failed" {
  alarm_name          = "${var.name}-nightly-run-failed"
  alarm_description   = "The nightly sluice run failed: read /ecs/${var.name}/run. Re-running the window is safe."
  namespace           = "Sluice/${var.name}"
  metric_name         = "NightlyRunFailed"
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
}

# No success in the last 24 hours: failed, still running, never started, or
# paused (schedule_state = DISABLED also trips it, as a reminder).
resource "aws_cloudwatch_metric_alarm" "run_not_succeeded" {
  alarm_name          = "${var.name}-nightly-run-not-succeeded"
  alarm_description   = "No successful sluice run in the last 24 hours."
  namespace           = "Sluice/${var.name}"
  metric_name         = "NightlyRunSucceeded"
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
}

# The tail stopped with an error: a permanent one (purged binlog, missing
# source settings or grants) or the stream failing 10 times in a row. Every
# failed exit ends with one plain stderr line, `sluice tail: <error>`, also
# for errors found at start, which log no JSON line of their own; a tail
# stopped by a deployment or scale-in writes none. ECS starts a new task,
# which resumes from the committed position; this alarm says the changes
# stopped flowing meanwhile. Read /ecs/<name>/tail: the message names the fix
# (and, for a purged binlog, the window to backfill).
resource "aws_cloudwatch_log_metric_filter" "tail_failed" {
  name           = "${var.name}-TailFailed"
  log_group_name = aws_cloudwatch_log_group.this["tail"].name
  pattern        = "\"sluice tail:\""

  metric_transformation {
    name      = "TailFailed"
    namespace = "Sluice/${var.name}"
    value     = "1"
  }
}

resource "aws_cloudwatch_metric_alarm" "tail_failed" {
  alarm_name          = "${var.name}-tail-failed"
  alarm_description   = "The sluice tail stopped with an error: read /ecs/${var.name}/tail for what to fix."
  namespace           = "Sluice/${var.name}"
  metric_name         = "TailFailed"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
}
