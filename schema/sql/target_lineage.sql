-- Lineage columns, one per line: name, then its definition. Each is added
-- only when information_schema shows it missing (MySQL 8 has no
-- ADD COLUMN IF NOT EXISTS), so the migration is idempotent on both servers.
source_id      BIGINT UNSIGNED NULL COMMENT 'raw_records.id the row was read from'
source_version BIGINT UNSIGNED NULL COMMENT 'binlog position of the source change: file sequence << 32 | offset'
loaded_at      DATETIME(6) NULL COMMENT 'when Sluice last wrote the row (UTC)'
