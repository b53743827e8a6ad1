-- Target table: the same columns and dedupe key as the source, with the
-- transformed message. Lineage columns are nullable and added in place by
-- target_lineage.sql, so an existing records table is migrated, not recreated.
CREATE TABLE IF NOT EXISTS {{db}}.records (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  date        DATE NOT NULL,
  timestamp   DATETIME NOT NULL,
  device_type VARCHAR(255) NOT NULL,
  event_type  VARCHAR(255) NOT NULL,
  message     TEXT,
  created_at  TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at  TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uniq_dedupe (device_type, event_type, timestamp),
  KEY idx_timestamp (timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
