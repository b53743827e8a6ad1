output "cluster_arn" {
  description = "The ECS cluster running Sluice."
  value       = aws_ecs_cluster.this.arn
}

output "task_definition_arns" {
  description = "Task definitions by name (run, consume, tail). Run a window by hand with `aws ecs run-task --task-definition <run> --overrides …`."
  value       = { for k, td in aws_ecs_task_definition.this : k => td.arn }
}

output "dsn_secret_arns" {
  description = "The Secrets Manager secrets to fill with the DSNs (source, target)."
  value       = { for k, s in aws_secretsmanager_secret.dsn : k => s.arn }
}

output "nightly_schedule_arn" {
  description = "The EventBridge Scheduler schedule of the nightly run."
  value       = aws_scheduler_schedule.nightly.arn
}

output "log_groups" {
  description = "CloudWatch log groups by task."
  value       = { for k, g in aws_cloudwatch_log_group.this : k => g.name }
}
