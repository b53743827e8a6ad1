# The nightly `sluice run`: EventBridge Scheduler starts one Fargate task at
# 02:00 in schedule_timezone. The task exits 0 only once the consumer group
# has applied the whole window (yesterday in source_tz).
#
# Pause: schedule_state = "DISABLED" (terraform apply -var
# schedule_state=DISABLED, or `aws scheduler update-schedule … --state
# DISABLED` by hand; the next apply restores what the variable says).
#
# ECS has no concurrency policy or deadline for a task: a run that outlives
# 24h overlaps the next one (harmless: both upsert the same rows) and is not
# stopped. The NightlyRunNotSucceeded alarm (alarms.tf) reports both.
resource "aws_scheduler_schedule" "nightly" {
  name        = "${var.name}-nightly"
  description = "Sluice nightly run: backfill yesterday and wait until the group has applied it."

  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.schedule_state

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_ecs_cluster.this.arn
    role_arn = aws_iam_role.scheduler.arn

    ecs_parameters {
      task_definition_arn = aws_ecs_task_definition.this["run"].arn
      launch_type         = "FARGATE"
      task_count          = 1

      network_configuration {
        subnets          = var.subnet_ids
        security_groups  = var.security_group_ids
        assign_public_ip = var.assign_public_ip
      }
    }

    # Retries cover failing to start the task (RunTask errors, no capacity),
    # not a run that fails: that one is alarmed, and re-run by hand or by the
    # next night.
    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 3
    }
  }
}
