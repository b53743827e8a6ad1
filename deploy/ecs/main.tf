# Sluice on ECS Fargate: the nightly `sluice run` started by EventBridge
# Scheduler (schedule.tf), the consumer group as a service, and the tail as a
# single-task service (tail_enabled). See the README, "Running in
# production".

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

locals {
  # Settings shared by every task, as SLUICE_* variables (README, "Common
  # flags"). SLUICE_METRICS_ADDR opens /metrics, /healthz and /readyz on
  # 9464 for a scraper in the VPC (e.g. an ADOT collector).
  environment = [
    { name = "SLUICE_BROKERS", value = var.brokers },
    { name = "SLUICE_TOPIC", value = var.topic },
    { name = "SLUICE_GROUP", value = var.group },
    { name = "SLUICE_TZ", value = var.source_tz },
    { name = "SLUICE_LOG_FORMAT", value = "json" },
    { name = "SLUICE_METRICS_ADDR", value = "0.0.0.0:9464" },
    { name = "GOMEMLIMIT", value = "160MiB" },
  ]

  # The Kafka connection's security, the same for every task.
  kafka_environment = concat(
    var.kafka_tls ? [{ name = "SLUICE_KAFKA_TLS", value = "true" }] : [],
    var.kafka_sasl == "" ? [] : [{ name = "SLUICE_KAFKA_SASL", value = var.kafka_sasl }],
    var.kafka_user == "" ? [] : [{ name = "SLUICE_KAFKA_USER", value = var.kafka_user }],
  )
  kafka_secrets = [for s in aws_secretsmanager_secret.kafka_password : { name = "SLUICE_KAFKA_PASSWORD", valueFrom = s.arn }]

  source_dsn = { name = "SLUICE_SOURCE_DSN", valueFrom = aws_secretsmanager_secret.dsn["source"].arn }
  target_dsn = { name = "SLUICE_TARGET_DSN", valueFrom = aws_secretsmanager_secret.dsn["target"].arn }

  # One task definition each. The run pins its readers to its vCPUs: the
  # default is one per CPU the kernel reports, which need not be the task's.
  tasks = {
    run = {
      command     = var.run_args
      cpu         = var.run_cpu
      memory      = var.run_memory
      secrets     = [local.source_dsn, local.target_dsn]
      environment = [{ name = "SLUICE_READERS", value = tostring(max(2, ceil(var.run_cpu / 1024))) }]
    }
    consume = {
      command     = ["consume", "--consumers", "1"] # one member per task: consume_count
      cpu         = var.consume_cpu
      memory      = var.consume_memory
      secrets     = [local.target_dsn]
      environment = []
    }
    # The tail holds at most --max-buffered-records (20000) records in flight
    # to Kafka, like a consumer's batch: the consume sizing fits it.
    tail = {
      command     = ["tail"]
      cpu         = var.consume_cpu
      memory      = var.consume_memory
      secrets     = [local.source_dsn]
      environment = []
    }
  }
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.tasks

  name              = "/ecs/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_ecs_task_definition" "this" {
  for_each = local.tasks

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name      = "sluice"
    image     = var.image
    command   = each.value.command
    essential = true
    # The image's nonroot user; nothing is written to the filesystem.
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    environment            = concat(local.environment, local.kafka_environment, each.value.environment)
    # Resolved by the execution role at start; never in the task definition.
    secrets      = concat(each.value.secrets, local.kafka_secrets)
    portMappings = [{ containerPort = 9464, protocol = "tcp", name = "metrics" }]
    # On SIGTERM a consumer abandons its uncommitted batch and leaves the
    # group; a run exits 1 (its window is incomplete, and safe to re-run); the
    # tail commits the source transactions it has read whole and exits.
    stopTimeout = 60
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

# The consumer group. Fargate has no HTTP probe: a member that fails exits,
# and the service starts another. Scale with consume_count.
resource "aws_ecs_service" "consume" {
  name            = "${var.name}-consume"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["consume"].arn
  desired_count   = var.consume_count
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }
}

# The tail: exactly one task while tail_enabled, and the old one stops before
# the new one starts (minimum 0 %, maximum 100 %), like Kubernetes' Recreate.
# A second task would take the same Kafka transactional id
# (sluice-tail-<name>) and fence the first, so never more than 1. A task that
# exits (a permanent error: purged binlog, missing settings or grants; its log
# says what to fix) is replaced by ECS; the TailFailed alarm (alarms.tf)
# reports it. Restarts resume from the last committed position.
resource "aws_ecs_service" "tail" {
  name            = "${var.name}-tail"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.this["tail"].arn
  desired_count   = var.tail_enabled ? 1 : 0
  launch_type     = "FARGATE"
  propagate_tags  = "SERVICE"

  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = var.assign_public_ip
  }
}
