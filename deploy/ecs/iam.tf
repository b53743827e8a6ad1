data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role: ECS uses it to pull the image, write the logs and read
# the DSN secrets when it starts a task.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "read_dsn" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat([for s in aws_secretsmanager_secret.dsn : s.arn], [for s in aws_secretsmanager_secret.kafka_password : s.arn])
  }
}

resource "aws_iam_role_policy" "read_dsn" {
  name   = "read-dsn"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.read_dsn.json
}

# The task role: what Sluice itself may call. It calls no AWS API but MSK's
# IAM login (kafka_sasl = "aws-msk-iam"), which signs with this role's
# credentials; otherwise it has no policy, and exists to add one (e.g. ECS
# Exec) without touching the task definitions.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# MSK IAM: connect, and read, write and create the topics (the data topic,
# its .progress state topic and .dlq), the groups (the consumers', the
# re-drive's) and the tail's transactional ids, all of this cluster. The
# topic, group and transactional-id ARNs share the cluster's name and id.
locals {
  msk_iam      = var.kafka_sasl == "aws-msk-iam"
  msk_resource = replace(var.msk_cluster_arn, ":cluster/", ":RESOURCE/")
}

data "aws_iam_policy_document" "msk_iam" {
  count = local.msk_iam ? 1 : 0

  statement {
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.msk_cluster_arn]
  }
  statement {
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:ReadData", "kafka-cluster:WriteData", "kafka-cluster:DescribeTopicDynamicConfiguration"]
    resources = ["${replace(local.msk_resource, "RESOURCE", "topic")}/*"]
  }
  statement {
    actions   = ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"]
    resources = ["${replace(local.msk_resource, "RESOURCE", "group")}/*"]
  }
  statement {
    actions   = ["kafka-cluster:AlterTransactionalId", "kafka-cluster:DescribeTransactionalId"]
    resources = ["${replace(local.msk_resource, "RESOURCE", "transactional-id")}/*"]
  }
}

resource "aws_iam_role_policy" "msk_iam" {
  count = local.msk_iam ? 1 : 0

  name   = "msk-iam"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.msk_iam[0].json
}

# The scheduler role: EventBridge Scheduler starts the nightly task with it.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler_run_task" {
  statement {
    actions   = ["ecs:RunTask"]
    resources = ["${aws_ecs_task_definition.this["run"].arn_without_revision}:*"]

    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.this.arn]
    }
  }

  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.task.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler_run_task" {
  name   = "run-nightly-task"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler_run_task.json
}
