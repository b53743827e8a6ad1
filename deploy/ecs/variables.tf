variable "region" {
  description = "AWS region to deploy Sluice into."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name (cluster, task families, log groups, secrets, roles)."
  type        = string
  default     = "sluice"
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = { "app" = "sluice" }
}

variable "image" {
  description = "The Sluice image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/sluice:v1.2.3 (make image; push it to ECR). Upgrading is a change of this tag."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the tasks. They need routes to MySQL, Kafka, ECR, CloudWatch Logs and Secrets Manager (NAT or VPC endpoints)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups for the tasks: egress to MySQL (3306) and the Kafka brokers. Nothing connects in."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for subnets without NAT)."
  type        = bool
  default     = false
}

variable "brokers" {
  description = "Kafka bootstrap brokers, comma-separated (SLUICE_BROKERS). On MSK with SCRAM, its SASL_SSL listener (port 9096) with kafka_tls and kafka_sasl below."
  type        = string
}

# Kafka security (README, "TLS and SASL to Kafka"). For MSK with SCRAM:
# brokers on port 9096, kafka_tls = true, kafka_sasl = "scram-sha-512" and
# kafka_user; Terraform then creates the secret <name>/kafka-password without
# a value (set it with `aws secretsmanager put-secret-value`), and every task
# reads it as SLUICE_KAFKA_PASSWORD. For MSK IAM: brokers on port 9098,
# kafka_sasl = "aws-msk-iam" and msk_cluster_arn; the task role gets the
# kafka-cluster permissions (iam.tf) and no password is involved.
variable "kafka_tls" {
  description = "Connect to the brokers over TLS (SLUICE_KAFKA_TLS), verified with the system's CAs (MSK's are public)."
  type        = bool
  default     = false
}

variable "kafka_sasl" {
  description = "SASL mechanism (SLUICE_KAFKA_SASL): \"\" (none), plain, scram-sha-256, scram-sha-512, or aws-msk-iam (the task role signs; set msk_cluster_arn)."
  type        = string
  default     = ""
  validation {
    condition     = contains(["", "plain", "scram-sha-256", "scram-sha-512", "aws-msk-iam"], var.kafka_sasl)
    error_message = "kafka_sasl must be \"\", plain, scram-sha-256, scram-sha-512 or aws-msk-iam."
  }
}

variable "msk_cluster_arn" {
  description = "The MSK cluster's ARN, with kafka_sasl = \"aws-msk-iam\": the task role may connect to it and use its topics, groups and transactional ids."
  type        = string
  default     = ""
  validation {
    condition     = var.msk_cluster_arn == "" || can(regex("^arn:[^:]+:kafka:[^:]+:[0-9]+:cluster/", var.msk_cluster_arn))
    error_message = "msk_cluster_arn must be an MSK cluster ARN (arn:aws:kafka:<region>:<account>:cluster/<name>/<id>)."
  }
}

variable "kafka_user" {
  description = "SASL user (SLUICE_KAFKA_USER), with kafka_sasl."
  type        = string
  default     = ""
}

variable "topic" {
  description = "Kafka topic of the change events (SLUICE_TOPIC)."
  type        = string
  default     = "sluice.raw_records"
}

variable "group" {
  description = "Kafka consumer group shared by the nightly run and the consume service (SLUICE_GROUP)."
  type        = string
  default     = "sluice"
}

variable "source_tz" {
  description = "Time zone of the source's DATETIME wall clock (SLUICE_TZ): the nightly window is yesterday in it. Not the schedule's zone."
  type        = string
  default     = "UTC"
}

# --- the nightly run --------------------------------------------------------

variable "schedule_expression" {
  description = "When the nightly `sluice run` starts, in EventBridge Scheduler syntax."
  type        = string
  default     = "cron(0 2 * * ? *)"
}

variable "schedule_timezone" {
  description = "IANA time zone of schedule_expression, e.g. Europe/Berlin."
  type        = string
  default     = "UTC"
}

variable "schedule_state" {
  description = "The pause switch of the nightly run: ENABLED, or DISABLED to stop new runs (a running task carries on). `terraform apply -var schedule_state=DISABLED`."
  type        = string
  default     = "ENABLED"

  validation {
    condition     = contains(["ENABLED", "DISABLED"], var.schedule_state)
    error_message = "schedule_state must be ENABLED or DISABLED."
  }
}

variable "run_args" {
  description = "Arguments of the nightly task. Add \"--verify\" to reconcile the window after the run (about doubles its database load)."
  type        = list(string)
  default     = ["run"]
}

variable "run_cpu" {
  description = "Fargate CPU units of the nightly run (1024 = 1 vCPU)."
  type        = number
  default     = 1024
}

variable "run_memory" {
  description = "Fargate memory (MiB) of the nightly run. A 1M-row run peaks at ~200 MB RSS with the 160 MiB GOMEMLIMIT; 2048 is Fargate's minimum for 1 vCPU."
  type        = number
  default     = 2048
}

# --- the consumer group and the tail ----------------------------------------

variable "consume_count" {
  description = "Consume tasks (group members). More than the topic's partitions (12) sit idle; 0 leaves the nightly run's own members alone."
  type        = number
  default     = 2
}

variable "consume_cpu" {
  description = "Fargate CPU units of a consume task."
  type        = number
  default     = 512
}

variable "consume_memory" {
  description = "Fargate memory (MiB) of a consume task."
  type        = number
  default     = 1024
}

# On by default since tail mode landed, like the Kubernetes Deployment
# (replicas 1): the tail is what makes the target near real time, and the
# nightly run stays as the reconciliation. It needs the source's binlog
# settings and grants (README, "Source settings and grants"); without them the
# task stops with a message saying what to fix and ECS keeps restarting it, so
# a nightly-only deployment, or one whose source is not ready yet, sets false.
# Upgrading from a version of this module where it was false starts the tail
# on the next apply, from the binlog's end (--from now).
variable "tail_enabled" {
  description = "Run the tail service (`sluice tail`, binlog CDC): exactly one task. false leaves the service at 0 tasks."
  type        = bool
  default     = true
}

# --- secrets, logs, alarms --------------------------------------------------

# The DSNs live in Secrets Manager; Terraform creates the two secrets but
# never their values (which would land in the state). Set them once:
#
#   aws secretsmanager put-secret-value --secret-id sluice/source-dsn \
#     --secret-string 'sluice_src:…@tcp(db-src.example:3306)/source_db?tls=true'
#
# RDS Proxy: point the DSNs at a proxy endpoint when many tasks connect or to
# ride out failovers. Sluice's pool closes a connection after 30 minutes
# (ConnMaxLifetime); keep that below the proxy's idle client timeout (default
# 1800 s): set idle_client_timeout to 3600 or more, so Sluice always closes
# first and never reuses a connection the proxy has dropped. Sluice sets
# time_zone on every connection, which pins it to one database connection:
# harmless with Sluice's few long-lived connections. The binlog (tail mode)
# cannot go through RDS Proxy: give the tail a direct DSN.
variable "secret_recovery_window_days" {
  description = "Days a deleted DSN secret can be restored (0 deletes at once)."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of every Sluice log group."
  type        = number
  default     = 30
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when the nightly run fails or has not succeeded for a day, or the tail stops with an error. Empty: the alarms exist but notify no one."
  type        = list(string)
  default     = []
}
