# The DSNs, one secret each, read by the tasks' `secrets` (never in the task
# definition or the command line). Terraform creates the secrets but not
# their values, so no password lands in the state: set them with
# `aws secretsmanager put-secret-value` (variables.tf, above
# secret_recovery_window_days, also has the RDS Proxy advice).
resource "aws_secretsmanager_secret" "dsn" {
  for_each = {
    source = "Sluice source DSN (go-sql-driver form): sluice_src, SELECT on source_db, and REPLICATION SLAVE, REPLICATION CLIENT for the tail (README, Schema). A direct connection, not RDS Proxy."
    target = "Sluice target DSN (go-sql-driver form): sluice_dst, SELECT/INSERT/UPDATE/DELETE on target_db.records."
  }

  name                    = "${var.name}/${each.key}-dsn"
  description             = each.value
  recovery_window_in_days = var.secret_recovery_window_days
}

# The Kafka SASL password, when kafka_sasl is set: created without a value,
# like the DSNs, and read by every task as SLUICE_KAFKA_PASSWORD.
resource "aws_secretsmanager_secret" "kafka_password" {
  count = contains(["plain", "scram-sha-256", "scram-sha-512"], var.kafka_sasl) ? 1 : 0

  name                    = "${var.name}/kafka-password"
  description             = "Sluice's Kafka SASL password, for user ${var.kafka_user} (${var.kafka_sasl})."
  recovery_window_in_days = var.secret_recovery_window_days
}
