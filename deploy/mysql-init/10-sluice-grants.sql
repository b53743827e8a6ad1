-- Run once by the mysql image on first start (docker-compose.yml).
-- sluice creates the databases (migrate), and the tests create their own.
CREATE USER IF NOT EXISTS 'sluice'@'%' IDENTIFIED BY 'sluice';
GRANT ALL PRIVILEGES ON *.* TO 'sluice'@'%';
-- Tail mode reads the binlog as a replica. ALL PRIVILEGES already includes
-- these two; they are named here so that narrowing the line above still
-- leaves the tail what it needs (with SELECT on source_db).
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'sluice'@'%';
