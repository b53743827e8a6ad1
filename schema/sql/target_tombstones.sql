-- Tombstones of deleted target rows, one per dedupe key: the highest binlog
-- version of a delete applied to the key. The consumer drops an upsert of the
-- key whose version is older than its tombstone (a backfill read taken before
-- the delete), so a deleted row cannot come back, while records itself stays
-- an exact copy of the source (hard deletes). An upsert newer than the
-- tombstone applies and removes it.
--
-- The primary key is the dedupe key with timestamp first: the consumer looks
-- up the tombstones of a batch by the batch's timestamp range, which then
-- reads the clustered index alone. idx_deleted_at serves pruning:
--   DELETE FROM target_db.records_tombstones
--   WHERE deleted_at < UTC_TIMESTAMP(6) - INTERVAL 8 DAY LIMIT 10000;
-- {{db}} is replaced by the quoted target database name.
CREATE TABLE IF NOT EXISTS {{db}}.records_tombstones (
  timestamp      DATETIME NOT NULL,
  device_type    VARCHAR(255) NOT NULL,
  event_type     VARCHAR(255) NOT NULL,
  source_version BIGINT UNSIGNED NOT NULL COMMENT 'binlog position of the newest delete of the key: file sequence << 32 | offset',
  deleted_at     DATETIME(6) NOT NULL COMMENT 'when Sluice applied that delete (UTC)',
  PRIMARY KEY (timestamp, device_type, event_type),
  KEY idx_deleted_at (deleted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
