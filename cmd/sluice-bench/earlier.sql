-- The earlier RDB-to-RDB job's layout of the IoT tables (issue 22), which
-- Sluice keeps when it takes that job's tables over. The columns are those
-- of schema/sql/source.sql and target.sql; what differs from the layout
-- Sluice creates is what the earlier job's DDL had:
--   the tables and their text columns in utf8mb4_unicode_ci, and
--   a second index, idx_device_event_time, that repeats the unique key
--   uniq_dedupe (device_type, event_type, timestamp).
-- `sluice-bench --layout earlier` (make bench LAYOUT=earlier) creates
-- bench_source's raw_records and every target's records with it; `sluice
-- migrate` then adds the lineage columns and the tombstone table, as it does
-- to an existing table, and must leave the index and the collation as they
-- are (the bench checks). layout_test.go fails if either goes from this file.
-- {{db}} is replaced by the quoted database name.
CREATE TABLE {{db}}.raw_records (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  date        DATE NOT NULL,
  timestamp   DATETIME NOT NULL,
  device_type VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  event_type  VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  message     TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  created_at  TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at  TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uniq_dedupe (device_type, event_type, timestamp),
  KEY idx_timestamp (timestamp),
  KEY idx_device_event_time (device_type, event_type, timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE {{db}}.records (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  date        DATE NOT NULL,
  timestamp   DATETIME NOT NULL,
  device_type VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  event_type  VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  message     TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci,
  created_at  TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at  TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uniq_dedupe (device_type, event_type, timestamp),
  KEY idx_timestamp (timestamp),
  KEY idx_device_event_time (device_type, event_type, timestamp)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
